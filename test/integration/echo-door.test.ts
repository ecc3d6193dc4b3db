// The echo door /echo: real ws clients against a real gateway. Every message comes back
// unchanged; the limits, the Origin rule, auth and the rate are those of the other doors;
// nothing reaches the topic space.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startGateway, openMqtt, type T } from '../helpers/gateway.js'
import { addUser } from '../../src/core/policy/users.js'
import { runProgram } from '../helpers/program.js'
import { PROJECT_DIR } from '../helpers/cli.js'

const EXAMPLE = join(PROJECT_DIR, 'examples', 'ws-chat.mjs')

interface Echoed { data: Buffer, isBinary: boolean }

/** Opens /echo; resolves once open, rejects with the HTTP status of a refused upgrade. */
function openEcho (t: T, url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket, next: (ms?: number) => Promise<Echoed>, closed: Promise<number>, received: Echoed[] }> {
  const ws = new WebSocket(url, { headers })
  t.teardown(() => ws.terminate())
  const received: Echoed[] = []
  const waiters: Array<(e: Echoed) => void> = []
  ws.on('message', (data: Buffer, isBinary) => {
    const e = { data, isBinary }
    const w = waiters.shift()
    if (w) w(e)
    else received.push(e)
  })
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  const next = (ms = 5000): Promise<Echoed> => {
    const queued = received.shift()
    if (queued) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo within the timeout')), ms)
      waiters.push((e) => { clearTimeout(timer); resolve(e) })
    })
  }
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, next, closed, received }))
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })))
    ws.once('error', reject)
  })
}

/** The HTTP status an upgrade got: 101 when it opened, else the refusal's. */
async function statusOf (p: Promise<{ ws: WebSocket }>): Promise<number | undefined> {
  try { (await p).ws.terminate(); return 101 } catch (err) { return (err as { status?: number }).status }
}

function echoUrl (wsUrl: string): string { return wsUrl.replace(/\/ws$/, '/echo') }

t.test('text and binary come back unchanged; nothing reaches the topic space', async (t) => {
  const { urls, gateway } = await startGateway(t)
  const spy = await openMqtt(t, urls.mqtt, { clientId: 'spy' })
  const seen: string[] = []
  spy.on('message', (topic) => { if (!topic.startsWith('$SYS') && !topic.startsWith('presence/')) seen.push(topic) })
  await spy.subscribeAsync('#')
  const c = await openEcho(t, echoUrl(urls.ws))

  c.ws.send('hello échø {"type":"publish","topic":"chat/lobby","payload":"x"}')
  const text = await c.next()
  t.equal(text.isBinary, false, 'a text message comes back as text')
  t.equal(text.data.toString('utf8'), 'hello échø {"type":"publish","topic":"chat/lobby","payload":"x"}', 'byte for byte')

  const bytes = Buffer.from([0, 255, 1, 254, 0x80, 0x7f, 13, 10])
  c.ws.send(bytes)
  const bin = await c.next()
  t.equal(bin.isBinary, true, 'a binary message comes back as binary')
  t.same([...bin.data], [...bytes], 'byte for byte')

  c.ws.send(Buffer.alloc(0))
  t.equal((await c.next()).data.length, 0, 'an empty binary message is echoed too')

  // A message exactly at the limit passes (default --max-payload, 256 KiB or so).
  const max = gateway.options.maxPayload
  const big = Buffer.alloc(max, 7)
  c.ws.send(big)
  const back = await c.next()
  t.equal(back.data.length, max, `a message of exactly --max-payload (${max} bytes) is echoed`)

  // Order: a burst comes back in order.
  for (let i = 0; i < 20; i++) c.ws.send(`n${i}`)
  const order: string[] = []
  for (let i = 0; i < 20; i++) order.push((await c.next()).data.toString())
  t.same(order, Array.from({ length: 20 }, (_, i) => `n${i}`), 'in order')

  // The spy is subscribed to everything: a round trip on the topic space shows it listens.
  await spy.publishAsync('probe/echo', 'x')
  const deadline = Date.now() + 5000
  while (!seen.includes('probe/echo') && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
  t.same(seen, ['probe/echo'], 'the MQTT subscriber to # saw only its own probe: no echo traffic published')
  const stats = gateway.stats.snapshot() as { doors: Record<string, { messagesIn: number }> }
  t.equal(stats.doors.ws?.messagesIn, 0, 'the /ws hub counted nothing')
})

t.test('a message over --max-payload closes with 1009', async (t) => {
  const { urls, gateway } = await startGateway(t, { maxPayload: 1024 })
  const c = await openEcho(t, echoUrl(urls.ws))
  c.ws.send(Buffer.alloc(1024, 1))
  t.equal((await c.next()).data.length, 1024, '1024 bytes: echoed')
  c.ws.send(Buffer.alloc(1025, 1))
  t.equal(await c.closed, 1009, '1025 bytes: close 1009 (message too big)')
  t.equal(gateway.stats.dropped.tooLarge, 1, 'counted as tooLarge')
})

t.test('a foreign Origin is refused with 403; the page\'s own and --allow-origin pass', async (t) => {
  const { urls } = await startGateway(t, { allowOrigin: 'https://allowed.example' })
  const host = new URL(urls.http).host
  t.equal(await statusOf(openEcho(t, echoUrl(urls.ws), { Origin: 'https://evil.example' })), 403, 'foreign origin: 403')
  const own = await openEcho(t, echoUrl(urls.ws), { Origin: `http://${host}` })
  own.ws.send('own')
  t.equal((await own.next()).data.toString(), 'own', 'the page\'s own origin is echoed')
  const allowed = await openEcho(t, echoUrl(urls.ws), { Origin: 'https://allowed.example' })
  allowed.ws.send('allowed')
  t.equal((await allowed.next()).data.toString(), 'allowed', '--allow-origin is echoed')
})

t.test('the message rate: over it nothing is echoed, then close 1008', async (t) => {
  const { urls, gateway } = await startGateway(t, { msgRate: 5 })
  const c = await openEcho(t, echoUrl(urls.ws))
  // Bursts of twice the rate: 10 pass, the rest are dropped; the 51st refused cuts.
  for (let i = 0; i < 80; i++) c.ws.send(`m${i}`)
  const code = await c.closed
  t.equal(code, 1008, 'closed with 1008 after 50 refused')
  t.ok(c.received.length >= 10 && c.received.length <= 12, `only the burst was echoed (${c.received.length})`)
  t.same(c.received.slice(0, 10).map((e) => e.data.toString()), Array.from({ length: 10 }, (_, i) => `m${i}`), 'the first ten, in order')
  t.ok(gateway.stats.dropped.rateLimited >= 50, `dropped.rateLimited counts them (${gateway.stats.dropped.rateLimited})`)
})

t.test('connection limits are shared with the other doors', async (t) => {
  const { urls } = await startGateway(t, { maxConnectionsPerIp: 2 })
  await openEcho(t, echoUrl(urls.ws))
  await openMqtt(t, urls.mqtt, { clientId: 'second' })
  t.equal(await statusOf(openEcho(t, echoUrl(urls.ws))), 503, 'third connection from the address: 503')
})

t.test('with auth on, /echo needs a token', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-echo-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const users = join(dir, 'users')
  await addUser(users, 'alice', 'pw-alice-1')
  const { urls } = await startGateway(t, { users, tokenSecret: 'x'.repeat(32) })
  t.equal(await statusOf(openEcho(t, echoUrl(urls.ws))), 401, 'no token: 401')
  t.equal(await statusOf(openEcho(t, `${echoUrl(urls.ws)}?token=forged`)), 401, 'a forged token: 401')
  const res = await fetch(`${urls.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'pw-alice-1' }) })
  const { token } = await res.json() as { token: string }
  const c = await openEcho(t, `${echoUrl(urls.ws)}?token=${encodeURIComponent(token)}`)
  c.ws.send('logged in')
  t.equal((await c.next()).data.toString(), 'logged in', 'with a token: echoed')
})

t.test('examples/ws-chat.mjs --echo checks a connection through /echo', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-echo-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const users = join(dir, 'users')
  await addUser(users, 'bob', 'pw-bob-1')
  const open = await startGateway(t)
  const ok = runProgram(t, process.execPath, [EXAMPLE, '--echo', '--url', open.urls.ws])
  t.match(await ok.exited, { code: 0 }, 'exit 0')
  t.match(ok.out(), /^echo ok: ws:\/\/127\.0\.0\.1:\d+\/echo sent text and binary back unchanged \(round trip [\d.]+ ms, [\d.]+ ms\)\n$/, 'one line saying so')
  const locked = await startGateway(t, { users, tokenSecret: 'y'.repeat(32) })
  const refused = runProgram(t, process.execPath, [EXAMPLE, '--echo', '--url', locked.urls.ws])
  t.match(await refused.exited, { code: 1 }, 'auth on, no token: exit 1')
  t.match(refused.err(), /HTTP 401/, 'saying the upgrade got 401')
})
