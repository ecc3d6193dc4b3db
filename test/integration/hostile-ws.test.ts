// Hostile input on the /ws hub: oversized, binary, fragmented and invalid UTF-8 frames,
// a frame header declaring a huge length, bad framing, thousands of subscribe frames,
// a flood from one client. After each, a /ws and an MQTT client still exchange messages.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { openHub, startGateway } from '../helpers/gateway.js'
import { assertHealthy, portOf, RawConn } from '../helpers/security.js'

/** A raw WebSocket on /ws: the upgrade by hand, so frames can be anything. */
async function rawWs (t: { teardown (fn: () => unknown): void }, httpUrl: string): Promise<RawConn> {
  const c = new RawConn(portOf(httpUrl))
  t.teardown(() => c.destroy())
  await c.opened
  const key = randomBytes(16).toString('base64')
  c.write(Buffer.from(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`))
  const head = await c.waitBytes(12, 5000)
  if (!head.toString('latin1').startsWith('HTTP/1.1 101')) throw new Error(`no upgrade: ${head.toString('latin1').slice(0, 60)}`)
  return c
}

/** A masked client frame header (and optionally a payload). */
function frame (opcode: number, payload: Buffer, opts: { fin?: boolean, rsv?: number, declaredLength?: bigint } = {}): Buffer {
  const mask = randomBytes(4)
  const len = opts.declaredLength ?? BigInt(payload.length)
  let header: Buffer
  const b0 = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode
  if (len < 126n) header = Buffer.from([b0, 0x80 | Number(len)])
  else if (len < 65536n) { header = Buffer.alloc(4); header[0] = b0; header[1] = 0x80 | 126; header.writeUInt16BE(Number(len), 2) }
  else { header = Buffer.alloc(10); header[0] = b0; header[1] = 0x80 | 127; header.writeBigUInt64BE(len, 2) }
  const body = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)))
  return Buffer.concat([header, mask, body])
}

/** The close code in a server close frame found in `bytes` (after the 101 response). */
function closeCode (bytes: Buffer): number | undefined {
  const end = bytes.indexOf('\r\n\r\n')
  let i = end < 0 ? 0 : end + 4
  while (i + 2 <= bytes.length) {
    const op = (bytes[i] as number) & 0x0f
    let len = (bytes[i + 1] as number) & 0x7f
    let off = i + 2
    if (len === 126) { len = bytes.readUInt16BE(off); off += 2 } else if (len === 127) { len = Number(bytes.readBigUInt64BE(off)); off += 8 }
    if (op === 8) return len >= 2 ? bytes.readUInt16BE(off) : 1005
    i = off + len
  }
  return undefined
}

t.test('oversized, binary, fragmented and invalid UTF-8 frames', async (t) => {
  const { gateway, urls } = await startGateway(t)
  const max = gateway.options.maxPayload * 2 + 4096

  const big = await openHub(t, urls.ws)
  await big.waitJson('history')
  big.ws.send('x'.repeat(max + 1))
  t.equal(await big.closed, 1009, 'a frame over the hard limit: 1009')

  const bin = await openHub(t, urls.ws)
  await bin.waitJson('history')
  bin.ws.send(randomBytes(512), { binary: true })
  const e = await bin.waitJson('error')
  t.equal(e.code, 'BAD_FRAME', 'binary: BAD_FRAME, and the connection stays')
  t.equal((await bin.request({ type: 'ping' })).type, 'pong')

  const frag = await openHub(t, urls.ws, { room: 'frag' })
  await frag.waitJson('history')
  const json = JSON.stringify({ type: 'chat', text: 'in three parts', id: 'f1' })
  frag.ws.send(json.slice(0, 10), { fin: false })
  frag.ws.send(json.slice(10, 20), { fin: false })
  frag.ws.send(json.slice(20), { fin: true })
  t.equal((await frag.waitFor((f) => typeof f === 'object' && f.id === 'f1')).type, 'ack', 'a fragmented frame is one message')
  await frag.waitMessage('chat/frag', (m) => m.payload === 'in three parts')
  // Fragments adding up to more than the limit are refused as they arrive.
  const chunk = 'y'.repeat(Math.ceil(max / 4))
  for (let i = 0; i < 5 && frag.ws.readyState === WebSocket.OPEN; i++) frag.ws.send(chunk, { fin: false })
  t.equal(await frag.closed, 1009, 'fragments over the limit: 1009')

  const utf = await openHub(t, urls.ws)
  await utf.waitJson('history')
  utf.ws.send(Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0xfe]), { binary: false })
  t.equal(await utf.closed, 1007, 'invalid UTF-8 in a text frame: 1007')

  await assertHealthy(t, urls, 'bad frames')
})

t.test('a frame header declaring 1 TB, bad framing bits, garbage after the upgrade', async (t) => {
  const { urls } = await startGateway(t)
  const huge = await rawWs(t, urls.http)
  const sentAt = Date.now()
  huge.write(frame(1, Buffer.alloc(0), { declaredLength: 1n << 40n }))
  for (let i = 0; i < 50 && !(await huge.closedWithin(20)); i++) huge.write(Buffer.from('aaaa'))
  t.ok(huge.closedAt !== undefined && huge.closedAt - sentAt < 1000, `cut ${(huge.closedAt ?? Date.now()) - sentAt} ms after the header`)
  t.equal(closeCode(huge.bytes), 1009, 'with 1009')

  const rsv = await rawWs(t, urls.http)
  rsv.write(frame(1, Buffer.from('hello'), { rsv: 4 }))
  t.ok(await rsv.closedWithin(2000), 'RSV1 without an extension: closed')
  t.equal(closeCode(rsv.bytes), 1002)

  const op = await rawWs(t, urls.http)
  op.write(frame(0x3, Buffer.from('reserved opcode')))
  t.ok(await op.closedWithin(2000), 'a reserved opcode: closed')

  const ctl = await rawWs(t, urls.http)
  ctl.write(frame(0x9, Buffer.alloc(200)))
  t.ok(await ctl.closedWithin(2000), 'a ping over 125 bytes: closed')

  const junk = await rawWs(t, urls.http)
  junk.write(randomBytes(4096))
  t.ok(await junk.closedWithin(2000), 'random bytes after the upgrade: closed')

  await assertHealthy(t, urls, 'bad framing')
})

t.test('thousands of subscribe frames', async (t) => {
  const { gateway, urls } = await startGateway(t)
  const c = await openHub(t, urls.ws)
  await c.waitJson('history')
  const before = ((await (await fetch(`${urls.http}/api/stats`)).json()) as { hub: { filters: number } }).hub.filters
  const N = 3000
  for (let i = 0; i < N; i++) c.send({ type: 'subscribe', topic: `subs/${i}/+`, id: `s${i}` })
  // More frames than the burst allows: the client is answered, then cut.
  t.equal(await c.closedWithin(20_000), 1008, `${N} frames in a burst end with 1008`)
  const acks = c.json('ack').length
  const errors = c.json('error')
  t.ok(acks <= gateway.options.maxSubscriptions, `${acks} subscriptions granted, at most ${gateway.options.maxSubscriptions}`)
  t.ok(errors.length > 0 && errors.every((e) => e.code === 'LIMIT_EXCEEDED' || e.code === 'RATE_LIMITED'), `the rest answered LIMIT_EXCEEDED or RATE_LIMITED (${errors.length})`)
  const after = ((await (await fetch(`${urls.http}/api/stats`)).json()) as { hub: { filters: number } }).hub.filters
  t.ok(after <= before, `the router let go of its filters (${before} before, ${after} after)`)
  t.comment(`${N} subscribe frames: ${acks} acks, ${errors.length} errors, then close ${c.closeCode ?? 'none'}`)
  await assertHealthy(t, urls, 'thousands of subscribe frames')
})

t.test('a flood from one client: RATE_LIMITED, then 1008; others unaffected', async (t) => {
  const { gateway, urls } = await startGateway(t)
  const flood = await openHub(t, urls.ws)
  await flood.waitJson('history')
  const limit = gateway.options.msgRate * 2 // the burst
  let sent = 0
  for (; sent < limit * 3 && flood.ws.readyState === WebSocket.OPEN; sent++) {
    flood.send({ type: 'publish', topic: 'flood/x', payload: 'f', id: `p${sent}` })
  }
  t.equal(await flood.closedWithin(20_000), 1008, 'a client that keeps going is closed with 1008')
  const limited = flood.json('error').filter((e) => e.code === 'RATE_LIMITED')
  t.ok(limited.length > 0, `${limited.length} RATE_LIMITED errors first, each echoing its frame id`)
  t.ok(limited.every((e) => typeof e.id === 'string' && e.id.startsWith('p')))
  t.ok(flood.json('ack').length <= limit + 50, `about the burst accepted (${flood.json('ack').length} of ${sent})`)
  t.ok(gateway.stats.dropped.rateLimited > 0)
  await assertHealthy(t, urls, 'a flood from one /ws client')
})
