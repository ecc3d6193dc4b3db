// --trust-proxy with a real HAProxy (Debian's `haproxy`) on loopback: clients from many
// 127.x.y.z source addresses reach one gateway through it; the per-address limits count
// each client's own address (X-Forwarded-For on /ws, PROXY protocol v2 and v1 on MQTT/TCP),
// and nobody but the proxy can choose the address it is counted under.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startCli } from '../helpers/cli.js'
import { requireProgram } from '../helpers/gateway.js'

const PER_IP = 3
const ADDRESSES = 200

async function freePort (): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => s.once('listening', resolve))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((resolve) => s.close(resolve))
  return port
}

async function waitPort (port: number, deadlineMs = 10_000): Promise<void> {
  const until = Date.now() + deadlineMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`port ${port} did not open`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Opens /ws from `from`; resolves 'open' or the refusing HTTP status. */
function openWs (url: string, from: string, headers: Record<string, string> = {}): Promise<{ result: number | 'open', ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url}?presence=0`, { localAddress: from, headers, handshakeTimeout: 8000 })
    ws.on('unexpected-response', (req, res) => { resolve({ result: res.statusCode ?? 0 }); req.destroy() })
    ws.on('open', () => resolve({ result: 'open', ws }))
    ws.on('error', () => resolve({ result: 0 }))
  })
}

const CONNECT = Buffer.from([0x10, 0x10, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04, 0x74, 0x65, 0x73, 0x74])

/** A raw MQTT CONNECT from `from` (client id made unique); resolves 'connack' or 'closed'. */
function mqttConnect (port: number, from: string, id: string, preamble?: Buffer): Promise<{ result: 'connack' | 'closed', socket: net.Socket }> {
  return new Promise((resolve) => {
    const idBuf = Buffer.from(id)
    const packet = Buffer.concat([Buffer.from([0x10, 12 + idBuf.length]), CONNECT.subarray(2, 12), Buffer.from([0, idBuf.length]), idBuf])
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: from }, () => {
      if (preamble) socket.write(preamble)
      socket.write(packet)
    })
    const timer = setTimeout(() => { socket.destroy(); resolve({ result: 'closed', socket }) }, 8000)
    socket.on('data', (d) => { if (d[0] === 0x20) { clearTimeout(timer); resolve({ result: 'connack', socket }) } })
    socket.on('close', () => { clearTimeout(timer); resolve({ result: 'closed', socket }) })
    socket.on('error', () => {})
  })
}

t.test('behind HAProxy, the limits count each client, and only the proxy names it', async (t) => {
  if (!requireProgram(t, 'haproxy', 'haproxy')) return
  t.setTimeout(180_000)
  const gw = await startCli(t, ['--memory', '--trust-proxy', '127.0.0.1', '--max-connections-per-ip', String(PER_IP), '--connect-rate', '1000000'])
  const httpPort = new URL(gw.urls.http).port
  const mqttPort = new URL(gw.urls.mqtt).port
  const [lbHttp, lbMqtt2, lbMqtt1] = await Promise.all([freePort(), freePort(), freePort()])
  const dir = mkdtempSync(join(tmpdir(), 'fusion-haproxy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cfg = join(dir, 'haproxy.cfg')
  writeFileSync(cfg, [
    'global', '  maxconn 4000',
    'defaults', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', '  timeout tunnel 1h',
    'frontend http', '  mode http', `  bind 127.0.0.1:${lbHttp}`, '  http-request del-header X-Forwarded-For', '  option forwardfor', '  default_backend gw_http',
    // The gateway listens on 127.0.0.1 and HAProxy connects from it: the trusted proxy.
    'backend gw_http', '  mode http', `  server n1 127.0.0.1:${httpPort} source 127.0.0.1`,
    'frontend mqtt2', '  mode tcp', `  bind 127.0.0.1:${lbMqtt2}`, '  default_backend gw_mqtt2',
    'backend gw_mqtt2', '  mode tcp', `  server n1 127.0.0.1:${mqttPort} send-proxy-v2 source 127.0.0.1`,
    'frontend mqtt1', '  mode tcp', `  bind 127.0.0.1:${lbMqtt1}`, '  default_backend gw_mqtt1',
    'backend gw_mqtt1', '  mode tcp', `  server n1 127.0.0.1:${mqttPort} send-proxy source 127.0.0.1`,
    ''
  ].join('\n'))
  const lb = spawn('/usr/sbin/haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] })
  let lbErr = ''
  lb.stderr.on('data', (d) => { lbErr += d })
  t.teardown(() => { lb.kill('SIGKILL') })
  await Promise.all([waitPort(lbHttp), waitPort(lbMqtt2), waitPort(lbMqtt1)]).catch((err) => { throw new Error(`${err.message}: ${lbErr}`) })

  // Many clients, each from its own address, PER_IP sockets each: all reach the one node.
  const lbWs = `ws://127.0.0.1:${lbHttp}/ws`
  const open: WebSocket[] = []
  t.teardown(() => { for (const ws of open) ws.terminate() })
  const from = (i: number): string => `127.0.${2 + Math.floor(i / 250)}.${1 + (i % 250)}`
  let refused = 0
  for (let batch = 0; batch < ADDRESSES; batch += 50) {
    const results = await Promise.all(Array.from({ length: 50 * PER_IP }, (_, k) => openWs(lbWs, from(batch + Math.floor(k / PER_IP)))))
    for (const r of results) { if (r.ws) open.push(r.ws); else refused++ }
  }
  t.equal(open.length, ADDRESSES * PER_IP, `${ADDRESSES * PER_IP} /ws clients from ${ADDRESSES} addresses through HAProxy, none refused`)
  t.equal(refused, 0)
  // One more from an address that has its PER_IP: refused, for that address alone.
  t.equal((await openWs(lbWs, from(0))).result, 503, 'over the per-address cap: 503, counted under the client\'s own address')
  const fresh = await openWs(lbWs, '127.0.9.1')
  t.equal(fresh.result, 'open', 'a new address still gets in')
  fresh.ws?.terminate()

  // HTTP: req.ip is the client's (the rate limit and ACL identity use it).
  const res = await fetch(`http://127.0.0.1:${lbHttp}/api/health`)
  t.equal(res.status, 200)

  // Straight to the gateway, not through the proxy: X-Forwarded-For is ignored.
  const direct = `ws://127.0.0.1:${httpPort}/ws`
  const spoofed: Array<number | 'open'> = []
  for (let i = 0; i <= PER_IP; i++) {
    const r = await openWs(direct, '127.0.8.8', { 'X-Forwarded-For': `10.0.0.${i + 1}` })
    spoofed.push(r.result)
    if (r.ws) open.push(r.ws)
  }
  t.same(spoofed, [...Array(PER_IP).fill('open'), 503], 'a client\'s own X-Forwarded-For does not change the address it is counted under')
  // Through the proxy, a client's own X-Forwarded-For is dropped by HAProxy (and, were it
  // kept, the walk from the right stops at the first untrusted hop: the address HAProxy saw).
  t.equal((await openWs(lbWs, from(1), { 'X-Forwarded-For': '10.9.9.9' })).result, 503, 'a forged hop does not escape the cap')

  // MQTT/TCP through HAProxy with PROXY protocol v2 and v1.
  const sockets: net.Socket[] = []
  t.teardown(() => { for (const s of sockets) s.destroy() })
  for (const [port, v] of [[lbMqtt2, 'v2'], [lbMqtt1, 'v1']] as const) {
    const addr = v === 'v2' ? '127.0.20.1' : '127.0.21.1'
    const got: string[] = []
    for (let i = 0; i <= PER_IP; i++) {
      const r = await mqttConnect(port, addr, `dev-${v}-${i}`)
      got.push(r.result)
      sockets.push(r.socket)
    }
    t.same(got, [...Array(PER_IP).fill('connack'), 'closed'], `MQTT through HAProxy (PROXY ${v}): the cap counts the client's address`)
    const other = await mqttConnect(port, v === 'v2' ? '127.0.20.2' : '127.0.21.2', `dev-${v}-other`)
    sockets.push(other.socket)
    t.equal(other.result, 'connack', `PROXY ${v}: another address still gets in`)
  }

  // Straight to the gateway with a forged PROXY header: not trusted, so not read; the
  // bytes are not MQTT and the connection closes without CONNACK.
  const forged = await mqttConnect(Number(mqttPort), '127.0.8.9', 'forger', Buffer.from('PROXY TCP4 10.1.1.1 127.0.0.1 1234 1883\r\n'))
  sockets.push(forged.socket)
  t.equal(forged.result, 'closed', 'a PROXY header from anyone but the proxy is not believed')
})
