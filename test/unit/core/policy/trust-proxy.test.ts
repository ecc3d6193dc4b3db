// --trust-proxy parsing, the X-Forwarded-For walk, and the PROXY protocol v1/v2 parser,
// including the worst cases (bounds, forged and malformed input).
import t from 'tap'
import { forwardedAddress, parseTrustedProxies, MAX_FORWARDED_FOR } from '../../../../src/core/policy/trust-proxy.js'
import { parseProxyHeader, V2_MAX_BODY } from '../../../../src/core/policy/proxy-protocol.js'
import { FusionError } from '../../../../src/core/errors.js'

t.test('the trust list: addresses and CIDRs, IPv4-mapped peers, bad entries refused', async (t) => {
  const tp = parseTrustedProxies('127.0.0.1, 10.0.0.0/8,fd00::/8')
  t.ok(tp?.trusts('127.0.0.1'))
  t.ok(tp?.trusts('::ffff:127.0.0.1'), 'an IPv4-mapped peer is its IPv4 address')
  t.ok(tp?.trusts('10.200.3.4'))
  t.ok(tp?.trusts('fd12::1'))
  t.notOk(tp?.trusts('127.0.0.2'))
  t.notOk(tp?.trusts(undefined))
  t.notOk(tp?.trusts('not-an-ip'))
  t.equal(parseTrustedProxies(''), undefined)
  t.equal(parseTrustedProxies(undefined), undefined)
  for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.0/x', '1.2.3.4/8/9', '::1/129']) {
    let code: string | undefined
    try { parseTrustedProxies(bad) } catch (err) { code = err instanceof FusionError ? err.code : 'other' }
    t.equal(code, 'BAD_OPTION', `${bad} is refused`)
  }
})

t.test('X-Forwarded-For: only from a trusted peer, the rightmost untrusted hop', async (t) => {
  const tp = parseTrustedProxies('127.0.0.1,10.0.0.0/8')
  t.equal(forwardedAddress('192.0.2.9', '198.51.100.1', tp), '192.0.2.9', 'an untrusted peer: its header is ignored')
  t.equal(forwardedAddress('127.0.0.1', '198.51.100.1', tp), '198.51.100.1')
  t.equal(forwardedAddress('127.0.0.1', '6.6.6.6, 198.51.100.1', tp), '198.51.100.1', 'a hop the client wrote is left of the one the proxy saw')
  t.equal(forwardedAddress('127.0.0.1', '198.51.100.1, 10.1.1.1', tp), '198.51.100.1', 'trusted hops are walked through')
  t.equal(forwardedAddress('127.0.0.1', ['198.51.100.1', '10.1.1.1'], tp), '198.51.100.1', 'several headers are one list')
  t.equal(forwardedAddress('127.0.0.1', 'garbage, 198.51.100.1', tp), '198.51.100.1')
  t.equal(forwardedAddress('127.0.0.1', '198.51.100.1, garbage', tp), '127.0.0.1', 'a malformed last hop: the peer')
  t.equal(forwardedAddress('127.0.0.1', undefined, tp), '127.0.0.1')
  t.equal(forwardedAddress('127.0.0.1', '1.1.1.1,'.repeat(MAX_FORWARDED_FOR), tp), '127.0.0.1', 'an oversized header is ignored')
  t.equal(forwardedAddress('127.0.0.1', '1.1.1.1', undefined), '127.0.0.1', 'no trust list: never')
  const t0 = performance.now()
  forwardedAddress('127.0.0.1', '10.0.0.1,'.repeat(200).slice(0, MAX_FORWARDED_FOR), tp)
  t.ok(performance.now() - t0 < 50, 'the worst header is cheap')
})

const v2 = (cmd: number, fam: number, body: Buffer): Buffer => {
  const h = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20 | cmd, fam, 0, 0])
  h.writeUInt16BE(body.length, 14)
  return Buffer.concat([h, body])
}

t.test('PROXY protocol v1 and v2', async (t) => {
  const line = Buffer.from('PROXY TCP4 198.51.100.7 10.0.0.1 40000 1883\r\n')
  t.same(parseProxyHeader(Buffer.concat([line, Buffer.from([0x10, 0x00])])), { address: '198.51.100.7', length: line.length })
  t.equal(parseProxyHeader(line.subarray(0, 10)), 'more')
  t.same(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { address: undefined, length: 15 })
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n')), 'bad')
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 ' + 'x'.repeat(200))), 'bad', 'no CRLF within 107 bytes')
  t.equal(parseProxyHeader(Buffer.from([0x10, 0x1c])), 'bad', 'MQTT without a preamble')
  t.same(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::5 2001:db8::1 4000 1883\r\n')), { address: '2001:db8::5', length: 46 })

  const ipv4 = Buffer.from([198, 51, 100, 8, 10, 0, 0, 1, 0x9c, 0x40, 0x07, 0x5b])
  t.same(parseProxyHeader(v2(1, 0x11, ipv4)), { address: '198.51.100.8', length: 28 })
  const ipv6 = Buffer.alloc(36)
  ipv6.writeUInt16BE(0x2001, 0); ipv6.writeUInt16BE(0xdb8, 2); ipv6.writeUInt16BE(5, 14)
  t.same(parseProxyHeader(v2(1, 0x21, ipv6)), { address: '2001:db8:0:0:0:0:0:5', length: 52 })
  t.same(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0))), { address: undefined, length: 16 }, 'LOCAL: keep the peer')
  t.equal(parseProxyHeader(v2(1, 0x11, ipv4).subarray(0, 20)), 'more')
  t.equal(parseProxyHeader(v2(1, 0x11, Buffer.alloc(V2_MAX_BODY + 1))), 'bad', 'an address block over the bound')
  t.equal(parseProxyHeader(v2(1, 0x11, Buffer.alloc(4))), 'bad', 'too short for IPv4')
  t.equal(parseProxyHeader(v2(5, 0x11, ipv4)), 'bad', 'unknown command')
  t.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01])), 'bad', 'a wrong signature')
})
