// Issue 16: a bridge to a real mosquitto upstream (out, in, loops, failures, TLS).
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import { openHub, openMqtt, requireProgram, startGateway } from '../helpers/gateway.js'
import { createGateway } from '../../src/index.js'
import { startMosquitto, until, type Mosquitto } from '../helpers/mosquitto.js'
import { runProgram } from '../helpers/program.js'

const have = requireProgram(t, 'mosquitto', 'mosquitto') && requireProgram(t, 'mosquitto_sub', 'mosquitto-clients') &&
  requireProgram(t, 'mosquitto_pub', 'mosquitto-clients') && requireProgram(t, 'openssl', 'openssl') && requireProgram(t, 'stdbuf', 'coreutils')

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-bridge-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function bridgeFile (t: Test, lines: string[]): string {
  const file = join(tempDir(t), 'bridge.conf')
  writeFileSync(file, lines.join('\n') + '\n')
  return file
}

async function health (http: string): Promise<any> {
  const res = await fetch(`${http}/api/health`)
  return { ...(await res.json() as object), httpStatus: res.status }
}

async function linkStats (http: string, name = 'up'): Promise<any> {
  const s = await (await fetch(`${http}/api/stats`)).json() as { upstream: Array<{ name: string }> }
  return s.upstream.find((l) => l.name === name)
}

const connected = (http: string, name = 'up'): Promise<any> =>
  until(async () => { const s = await linkStats(http, name); return s?.state === 'connected' ? s : undefined }, `link ${name} connected`)

/** mosquitto_sub on the upstream, line-buffered, ready once subscribed. */
async function upstreamSub (t: Test, up: Mosquitto, filter: string, count: number) {
  const sub = runProgram(t, 'stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(up.port), '-t', filter, '-q', '1', '-v', '-d', '-C', String(count), '-W', '20'])
  await sub.wait((o) => o.includes('SUBACK'), 'SUBACK')
  return sub
}

t.test('out: device messages reach the upstream with the prefixes applied; in: mosquitto_pub reaches a /ws client', { skip: !have }, async (t) => {
  const up = await startMosquitto(t)
  const file = bridgeFile(t, [
    'connection up', `url ${up.url}`, 'client-id gw-out-in',
    'topic sensors/# out 1 "" site1/',
    'topic cmd/# in 1 "" site1/'
  ])
  const { urls } = await startGateway(t, { bridge: file })
  await connected(urls.http)
  const sub = await upstreamSub(t, up, 'site1/#', 2)
  const device = await openMqtt(t, urls.mqtt)
  await device.publishAsync('sensors/t1', '21.5', { qos: 1 })
  await device.publishAsync('sensors/t2', '19.0', { qos: 0 })
  await device.publishAsync('other/t3', 'not bridged', { qos: 1 })
  const out = await sub.wait((o) => o.includes('site1/sensors/t2'), 'both messages upstream')
  t.match(out, /site1\/sensors\/t1 21\.5/, 'QoS 1 message upstream under site1/')
  t.notMatch(out, /other\/t3/, 'a topic no rule names stays local')

  const ws = await openHub(t, urls.ws, { name: 'w' })
  await ws.subscribe('cmd/#')
  const pub = runProgram(t, 'mosquitto_pub', ['-h', '127.0.0.1', '-p', String(up.port), '-t', 'site1/cmd/lamp', '-m', 'on', '-q', '1'])
  t.equal((await pub.exited).code, 0)
  const m = await ws.waitMessage('cmd/lamp')
  t.equal(m.payload, 'on', 'the /ws client sees the command with the prefix removed')
  t.match(m, { via: 'bridge', from: 'bridge:up' }, 'marked as come over the bridge')
  const h = await health(urls.http)
  t.equal(h.httpStatus, 200)
  t.equal(h.upstream.up.state, 'connected')
  const metrics = await (await fetch(`${urls.http}/metrics`)).text()
  t.match(metrics, /fusion_upstream_connected\{link="up"\} 1/)
  t.match(metrics, /fusion_upstream_messages_out_total\{link="up"\} 2/)
})

t.test('both on overlapping patterns makes no loop', { skip: !have }, async (t) => {
  const up = await startMosquitto(t)
  const file = bridgeFile(t, ['connection up', `url ${up.url}`, 'client-id gw-loop', 'topic loop/a/# both 1', 'topic loop/+/x both 1', 'topic loop/end both 1'])
  const { urls } = await startGateway(t, { bridge: file })
  await connected(urls.http)
  const seenUp: string[] = []
  const upc = await openMqtt(t, up.url, { clientId: 'loop-watch-up' })
  await upc.subscribeAsync('loop/#', { qos: 1 })
  upc.on('message', (topic, p) => seenUp.push(`${topic} ${p}`))
  const seenLocal: string[] = []
  const local = await openMqtt(t, urls.mqtt, { clientId: 'loop-watch-local' })
  await local.subscribeAsync('loop/#', { qos: 1 })
  local.on('message', (topic, p) => seenLocal.push(`${topic} ${p}`))
  const upPub = await openMqtt(t, up.url, { clientId: 'loop-pub-up' })
  const localPub = await openMqtt(t, urls.mqtt, { clientId: 'loop-pub-local' })
  const N = 20
  for (let i = 0; i < N; i++) {
    await localPub.publishAsync(`loop/a/x`, `L${i}`, { qos: 1 })
    await upPub.publishAsync(`loop/a/x`, `U${i}`, { qos: 1 })
  }
  // Markers both ways: once each side has seen the other's marker, everything before it has crossed.
  await localPub.publishAsync('loop/end', 'L-end', { qos: 1 })
  await upPub.publishAsync('loop/end', 'U-end', { qos: 1 })
  await until(() => (seenUp.includes('loop/end L-end') && seenLocal.includes('loop/end U-end') && seenUp.includes('loop/end U-end') && seenLocal.includes('loop/end L-end')) || undefined, 'markers')
  const count = (list: string[], prefix: string): number => list.filter((l) => l.startsWith(`loop/a/x ${prefix}`)).length
  t.equal(count(seenUp, 'L'), N, 'each local message once upstream')
  t.equal(count(seenUp, 'U'), N, 'each upstream message once upstream (not echoed back)')
  t.equal(count(seenLocal, 'L'), N, 'each local message once locally')
  t.equal(count(seenLocal, 'U'), N, 'each upstream message once locally')
  const s = await linkStats(urls.http)
  t.equal(s.messagesOut, N + 1, 'the link sent each local message once')
  t.equal(s.messagesIn, N + 1, 'the link took each upstream message once')
})

t.test('a wrong password gives one log line and a visible state, no crash, no tight loop', { skip: !have }, async (t) => {
  const dir = tempDir(t)
  const pw = join(dir, 'passwd')
  writeFileSync(pw, '')
  await new Promise<void>((resolve, reject) => spawn('mosquitto_passwd', ['-b', pw, 'gw', 'right'], { stdio: 'ignore' }).once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`mosquitto_passwd ${c}`)))))
  const up = await startMosquitto(t, ['allow_anonymous false', `password_file ${pw}`], { probe: { username: 'gw', password: 'right' } })
  const file = bridgeFile(t, ['connection up', `url ${up.url}`, 'username gw', 'password wrong', 'reconnect-min-ms 200', 'reconnect-max-ms 400', 'topic a/# out 1',
    'connection nowhere', 'url mqtt://127.0.0.1:1', 'reconnect-min-ms 200', 'reconnect-max-ms 400', 'topic a/# out 1'])
  const lines: string[] = []
  const gateway = await createGateway({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, memory: true, bridge: file }, { log: (level, msg) => lines.push(`${level} ${msg}`) })
  t.teardown(() => gateway.close())
  const urls = await gateway.listen()
  const s = await until(async () => { const l = await linkStats(urls.http); return l.attempts >= 4 ? l : undefined }, 'four attempts')
  t.match(s.lastError, /Not authorized|Bad user ?name or password/i, 'the refusal is named')
  t.not(s.state, 'connected')
  const n = await linkStats(urls.http, 'nowhere')
  t.match(n.lastError, /ECONNREFUSED/)
  const h = await health(urls.http)
  t.equal(h.httpStatus, 200, 'the gateway stays ready')
  t.equal(h.status, 'ok')
  t.ok(h.upstream.up.lastError, 'health names the problem')
  // 4 attempts with 100-400 ms waits take at least ~300 ms: no tight loop.
  t.ok(s.attempts < 30, `attempts bounded (${s.attempts})`)
  const about = (name: string): string[] => lines.filter((l) => l.includes(`upstream ${name} `))
  t.equal(about('up').length, 1, `one log line for the refused link: ${about('up').join(' | ')}`)
  t.equal(about('nowhere').length, 1, `one log line for the unreachable link: ${about('nowhere').join(' | ')}`)
})

t.test('ws:// upstream speaking MQTT 3.1.1: another mqtt-fusion, over its /mqtt door', async (t) => {
  const upstream = await startGateway(t)
  const file = bridgeFile(t, ['connection gw', `url ${upstream.urls['mqtt-ws']}`, 'protocol 3.1.1', 'topic t/# out 1 "" a/', 'topic c/# in 1 "" a/'])
  const local = await startGateway(t, { bridge: file })
  await connected(local.urls.http, 'gw')
  const watcher = await openHub(t, upstream.urls.ws, { name: 'watch' })
  await watcher.subscribe('a/#')
  const device = await openMqtt(t, local.urls.mqtt)
  await device.publishAsync('t/1', 'over ws', { qos: 1 })
  t.equal((await watcher.waitMessage('a/t/1')).payload, 'over ws', 'out over ws://')
  await device.subscribeAsync('c/#', { qos: 1 })
  const got = new Promise<string>((resolve) => device.once('message', (topic, p) => resolve(`${topic} ${p}`)))
  const r = await fetch(`${upstream.urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'a/c/1', payload: 'cmd', qos: 1 }) })
  t.equal(r.status, 200)
  t.equal(await got, 'c/1 cmd', 'in over ws://')
})

t.test('while the upstream is away: bounded queue (drop-oldest, counted), state in $SYS', async (t) => {
  const file = bridgeFile(t, ['connection up', 'url mqtt://127.0.0.1:1', 'queue-max-messages 5', 'reconnect-min-ms 1000', 'topic q/# out 1'])
  const { urls } = await startGateway(t, { bridge: file })
  const watcher = await openMqtt(t, urls.mqtt)
  const states: any[] = []
  watcher.on('message', (topic, p) => { if (topic === '$SYS/fusion/upstream/up') states.push(JSON.parse(p.toString())) })
  await watcher.subscribeAsync('$SYS/fusion/upstream/+')
  const device = await openMqtt(t, urls.mqtt)
  for (let i = 0; i < 8; i++) await device.publishAsync('q/x', String(i), { qos: 1 })
  const s = await linkStats(urls.http)
  t.equal(s.queued, 5, 'five kept')
  t.equal(s.dropped.queueFull, 3, 'the three oldest dropped and counted')
  const metrics = await (await fetch(`${urls.http}/metrics`)).text()
  t.match(metrics, /fusion_upstream_dropped_total\{link="up",reason="queueFull"\} 3/)
  const st = await until(() => states.find((x) => x.connected === false && x.lastError), 'a $SYS state with the error')
  t.match(st.lastError, /ECONNREFUSED/, 'the retained $SYS state names the problem')
})

t.test('an upstream that declares a 256 MB packet is cut at the header', async (t) => {
  // A fake upstream: CONNACK, then a PUBLISH header declaring 268,435,455 bytes.
  const server = createServer((s) => {
    s.once('data', () => { s.write(Buffer.from([0x20, 0x02, 0x00, 0x00])); s.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f, 0x00])) })
    s.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => { server.close() })
  const port = (server.address() as { port: number }).port
  const file = bridgeFile(t, ['connection up', `url mqtt://127.0.0.1:${port}`, 'protocol 3.1.1', 'reconnect-min-ms 5000', 'topic q/# in 1'])
  const { urls } = await startGateway(t, { bridge: file })
  const s = await until(async () => { const l = await linkStats(urls.http); return l.lastError ? l : undefined }, 'the cut')
  t.match(s.lastError, /packet of 268435455 bytes is over/, `named: ${s.lastError}`)
  t.not(s.state, 'connected')
  t.ok(process.memoryUsage().rss < 1024 * 1024 * 1024, 'nothing like 256 MB was buffered')
})
