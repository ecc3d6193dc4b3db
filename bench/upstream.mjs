// Issue 16: what the upstream bridge costs. One run, one machine:
//   - bridge out (device -> gateway -> bridge -> mosquitto -> subscriber), QoS 0 and QoS 1,
//     against a direct MQTT.js publisher to the same mosquitto;
//   - the time to drain a 10,000-message queue after the upstream returns.
// Usage: npm run build && node bench/upstream.mjs [--n 20000] [--drain 10000]
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt'
import { createGateway } from '../dist/index.js'

const { values } = parseArgs({ options: { n: { type: 'string', default: '20000' }, drain: { type: 'string', default: '10000' } } })
const N = Number(values.n)
const DRAIN = Number(values.drain)
const dir = mkdtempSync(join(tmpdir(), 'fusion-bench-upstream-'))
const cleanups = []
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function freePort () {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) })
  })
}

async function connect (url, opts = {}) {
  const c = mqtt.connect(url, { reconnectPeriod: 0, ...opts })
  await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject) })
  cleanups.push(() => c.end(true))
  return c
}

const port = await freePort()
const url = `mqtt://127.0.0.1:${port}`
const conf = join(dir, 'mosquitto.conf')
writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence true', `persistence_location ${dir}/`,
  'max_queued_messages 0', ...(process.env.MOSQ_INFLIGHT ? [`max_inflight_messages ${process.env.MOSQ_INFLIGHT}`] : []), ...(process.getuid?.() === 0 ? ['user root'] : []), ''].join('\n'))
let mosq
async function startMosquitto () {
  mosq = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' })
  for (let i = 0; i < 200; i++) {
    try { const c = await connect(url, { connectTimeout: 1000 }); c.end(true); return } catch { await sleep(25) }
  }
  throw new Error('mosquitto did not start')
}
async function stopMosquitto () {
  const gone = new Promise((resolve) => mosq.once('exit', resolve))
  mosq.kill('SIGTERM')
  await gone
}

await startMosquitto()
const bridgeConf = join(dir, 'bridge.conf')
writeFileSync(bridgeConf, ['connection up', `url ${url}`, 'client-id bench-gw', 'reconnect-min-ms 100', 'reconnect-max-ms 200',
  'topic q1/# out 1 "" up/', 'topic q0/# out 0 "" up/', ''].join('\n'))
const gateway = await createGateway({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, dataDir: join(dir, 'gw'), bridge: bridgeConf, msgRate: 0 })
const urls = await gateway.listen()
const link = async () => (await (await fetch(`${urls.http}/api/stats`)).json()).upstream[0]
while ((await link()).state !== 'connected') await sleep(20)

const sub = await connect(url, { clientId: 'bench-sub', clean: false })
await sub.subscribeAsync('up/#', { qos: 1 })
await sub.subscribeAsync('direct/#', { qos: 1 })
let received = 0
sub.on('message', () => { received++ })

async function waitFor (count, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs
  while (received < count && Date.now() < deadline) await sleep(5)
  return received
}

/** Publishes N messages (QoS 1 pipelined in windows) and times until the subscriber has them. */
async function run (label, client, topic, qos) {
  received = 0
  const payload = Buffer.alloc(64, 'x')
  const t0 = process.hrtime.bigint()
  if (qos === 1) {
    const WINDOW = 500
    for (let i = 0; i < N; i += WINDOW) {
      await Promise.all(Array.from({ length: Math.min(WINDOW, N - i) }, () => client.publishAsync(topic, payload, { qos: 1 })))
    }
  } else {
    for (let i = 0; i < N; i++) {
      client.publish(topic, payload, { qos: 0 })
      if (i % 1000 === 999) await sleep(0)
    }
  }
  const got = await waitFor(N, qos === 0 ? 20_000 : 120_000)
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const rate = Math.round(got / (ms / 1000))
  console.log(`${label.padEnd(34)} qos ${qos}: ${got}/${N} in ${ms.toFixed(0)} ms = ${rate} msg/s`)
  return { label, qos, got, ms, rate }
}

const device = await connect(urls.mqtt, { clientId: 'bench-device' })
const direct = await connect(url, { clientId: 'bench-direct' })
const results = []
for (const qos of [0, 1]) {
  results.push(await run('direct MQTT.js -> mosquitto', direct, 'direct/x', qos))
  results.push(await run('device -> gateway -> bridge', device, `q${qos}/x`, qos))
}

// Drain: the upstream goes away, DRAIN QoS 1 messages queue on disk, it comes back.
await stopMosquitto()
while ((await link()).state === 'connected') await sleep(20)
sub.end(true)
const numbered = (i) => { const b = Buffer.alloc(64, 'y'); b.writeUInt32BE(i, 0); return b }
for (let i = 0; i < DRAIN; i++) await device.publishAsync('q1/drain', numbered(i), { qos: 1 })
const queued = (await link()).queued
const t0 = Date.now()
await startMosquitto()
const tUp = Date.now()
let s
do { s = await link(); await sleep(10) } while (s.queued > 0 && Date.now() - tUp < 120_000)
const drained = Date.now() - tUp
received = 0
const order = []
// The listener goes on before CONNACK: the queued messages follow it in the same read.
const again = mqtt.connect(url, { clientId: 'bench-sub', clean: false, reconnectPeriod: 0 })
cleanups.push(() => again.end(true))
// Only the drained topic: the session may also hold unacknowledged leftovers of the runs above.
again.on('message', (topic, p) => { if (topic === 'up/q1/drain') { received++; order.push(p.readUInt32BE(0)) } })
const got = await waitFor(DRAIN, 60_000)
const inOrder = order.every((n, i) => n === i)
console.log(`drain: ${queued} queued; upstream back after ${tUp - t0} ms; queue empty ${drained} ms later (${Math.round(queued / (drained / 1000))} msg/s); ${got}/${DRAIN} delivered upstream, ${inOrder ? 'in order' : 'OUT OF ORDER'}`)
console.log(JSON.stringify({ n: N, results, drain: { queued, ms: drained, delivered: got, inOrder } }))

for (const c of cleanups) { try { c() } catch {} }
await gateway.close()
await stopMosquitto()
rmSync(dir, { recursive: true, force: true })
