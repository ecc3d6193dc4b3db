#!/usr/bin/env node
// @ts-check
/**
 * What scale-out on Redis costs and gives, on one machine, in one run:
 *
 *   npm run build && node bench/cluster.mjs [--duration 3] [--subs 100] [--window 64]
 *
 * Starts a redis-server (free loopback port, nothing on disk), one gateway alone and
 * two gateway nodes on that Redis, then measures with the bench's own lean clients:
 *
 * - fan-out: one MQTT publisher, `subs` /ws subscribers on one topic; one node alone,
 *   one node on Redis, and two nodes with the subscribers split between them;
 * - cross-door throughput, one publisher to one subscriber: MQTT -> /ws and /ws -> MQTT,
 *   and /ws chat (numbered and kept in the history), on one node and across two nodes;
 * - latency at a low fixed rate (what Redis adds): one node alone, on Redis within a
 *   node, and from node A to node B.
 *
 * Closed loop: at most `window` messages in flight (published, not yet received by
 * every subscriber). Every scenario is bounded in time (warm-up + duration, plus a
 * drain of at most 2 s); everything started here is stopped at the end, by PID.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import os from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect, withTimeout } from './lib/clients.mjs'
import { nowUs, readSeq, readTs } from './lib/payload.mjs'
import { Samples, round3 } from './lib/samples.mjs'
import { GATEWAY_BENCH_FLAGS, cpuOf, freePort, startGateway as startGatewayServer, startProcess } from './lib/servers.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const RUN = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))
const say = (/** @type {string} */ msg) => process.stderr.write(`cluster-bench: ${msg}\n`)

/** @typedef {import('./lib/clients.mjs').BenchClient} BenchClient */
/** @typedef {{ name: string, pid: number, urls: Record<string, string>, stop: () => Promise<void> }} Proc */

function args () {
  const a = process.argv.slice(2)
  const get = (/** @type {string} */ k, /** @type {number} */ d) => {
    const i = a.indexOf(`--${k}`)
    const n = i >= 0 ? Number(a[i + 1]) : d
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${k} must be a positive number`)
    return n
  }
  return { duration: Math.min(get('duration', 3), 30), subs: Math.min(get('subs', 100), 1000), window: Math.min(get('window', 64), 1000), rate: Math.min(get('rate', 200), 5000) }
}

/** A gateway node on loopback (--memory, the bench flags, and `extra`). @param {string} name @param {string[]} extra */
function startGateway (name, extra = []) {
  return startGatewayServer(ROOT, undefined, ['--memory', ...GATEWAY_BENCH_FLAGS, ...extra], name)
}

async function startRedis () {
  const port = await freePort()
  return startProcess('redis', { cmd: 'redis-server', args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] },
    (line) => line.includes('Ready to accept connections') ? { redis: `redis://127.0.0.1:${port}` } : undefined, { cwd: ROOT, timeoutMs: 20_000 })
}

/** @param {string} url @param {number} count @param {string} role */
async function clients (url, count, role) {
  /** @type {BenchClient[]} */
  const out = []
  for (let i = 0; i < count; i += 25) {
    const batch = Array.from({ length: Math.min(25, count - i) }, (_, j) => connect(url, { clientId: `cb-${RUN}-${role}-${i + j}` }))
    out.push(...await Promise.all(batch))
  }
  return out
}

/**
 * The closed loop: keeps `window` messages in flight from `pub`, each complete once
 * all `receivers` got it; measures deliveries per second and latency.
 * @param {{ pub: BenchClient, topic: string, receivers: BenchClient[], window: number, qos: 0 | 1, durationMs: number, pids: number[] }} o
 */
async function closedLoop (o) {
  const RING = 1 << 16
  const counts = new Uint16Array(RING)
  const lat = new Samples()
  const per = o.receivers.length
  let published = 0
  let completed = 0
  let delivered = 0
  let measuring = false
  let running = true
  const pump = () => { while (running && published - completed < o.window) o.pub.publish(o.topic, nowUs(), published++, o.qos) }
  /** @param {Buffer} buf @param {number} at */
  const onPayload = (buf, at) => {
    delivered++
    if (measuring) lat.add(nowUs() - readTs(buf, at))
    const k = readSeq(buf, at) & (RING - 1)
    if (++counts[k] === per) { counts[k] = 0; completed++; pump() }
  }
  for (const r of o.receivers) r.onPayload = onPayload
  let lastDelivered = -1
  let lastProgress = Date.now()
  let stalled = false
  const watchdog = setInterval(() => {
    if (delivered !== lastDelivered) { lastDelivered = delivered; lastProgress = Date.now() } else if (Date.now() - lastProgress > 3000) { stalled = true; running = false }
  }, 100)
  pump()
  await sleep(1000) // warm-up
  delivered = 0
  lat.reset()
  measuring = true
  const cpu0 = o.pids.map((pid) => cpuOf(pid) ?? 0)
  const t0 = nowUs()
  const deadline = Date.now() + o.durationMs
  while (running && Date.now() < deadline) await sleep(50)
  const seconds = (nowUs() - t0) / 1e6
  const serverCpu = o.pids.reduce((s, pid, i) => s + ((cpuOf(pid) ?? 0) - (cpu0[i] ?? 0)), 0) / seconds
  measuring = false
  const measured = delivered
  running = false
  clearInterval(watchdog)
  const drainUntil = Date.now() + 2000
  while (completed < published && Date.now() < drainUntil) await sleep(20)
  return { msgPerSec: Math.round(measured / seconds), ...lat.summaryMs(), serverCpu: round3(serverCpu), stalled, incomplete: published - completed }
}

/**
 * Open loop at `rate` messages a second, one receiver: latency without queueing.
 * @param {{ pub: BenchClient, topic: string, receiver: BenchClient, rate: number, durationMs: number }} o
 */
async function latency (o) {
  const lat = new Samples()
  const warm = Math.floor(o.rate / 2)
  let got = 0
  o.receiver.onPayload = (buf, at) => { if (readSeq(buf, at) >= warm) { got++; lat.add(nowUs() - readTs(buf, at)) } }
  const total = warm + Math.floor(o.rate * o.durationMs / 1000)
  const every = 1000 / o.rate
  const t0 = Date.now()
  for (let i = 0; i < total; i++) {
    const due = t0 + i * every
    const wait = due - Date.now()
    if (wait > 0) await sleep(wait)
    o.pub.publish(o.topic, nowUs(), i, 0)
  }
  const drainUntil = Date.now() + 2000
  while (got < total - warm && Date.now() < drainUntil) await sleep(20)
  return { rate: o.rate, received: got, expected: total - warm, ...lat.summaryMs() }
}

/** @param {BenchClient[]} cs */
async function closeAll (cs) {
  for (const c of cs) c.close()
  await withTimeout(Promise.all(cs.map((c) => c.closed)), 3000, 'close').catch(() => {})
}

async function main () {
  const o = args()
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('run `npm run build` first')
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) throw new Error('redis-server is not installed (Debian package redis-server)')
  /** @type {Proc[]} */
  const procs = []
  const results = []
  const load0 = os.loadavg()[0] ?? 0
  try {
    const redis = await startRedis()
    procs.push(redis)
    const url = /** @type {string} */ (redis.urls.redis)
    const [single, a, b] = await Promise.all([startGateway('single'), startGateway('A', ['--redis', url]), startGateway('B', ['--redis', url])])
    procs.push(single, a, b)
    say(`redis ${url}; single ${single.pid}, A ${a.pid}, B ${b.pid}; ${o.duration} s per scenario`)
    const d = o.duration * 1000
    const u = (/** @type {Proc} */ p, /** @type {string} */ door) => /** @type {string} */ (p.urls[door])

    /** @param {string} name @param {string} pubUrl @param {string[]} subUrls @param {number} subs @param {number[]} pids @param {string} [topicBase] */
    const fan = async (name, pubUrl, subUrls, subs, pids, topicBase = 'bench/cl') => {
      const topic = `${topicBase}/${RUN}/${results.length}`
      const receivers = []
      for (const [i, su] of subUrls.entries()) receivers.push(...await clients(su, Math.ceil(subs / subUrls.length), `s${results.length}-${i}`))
      await Promise.all(receivers.map((r) => withTimeout(r.subscribe(topic, 0), 10_000, 'subscribe')))
      const [pub] = await clients(pubUrl, 1, `p${results.length}`)
      const p = /** @type {BenchClient} */ (pub)
      try {
        say(name)
        const r = await closedLoop({ pub: p, topic, receivers, window: o.window, qos: 0, durationMs: d, pids })
        results.push({ scenario: name, subscribers: receivers.length, ...r })
      } finally {
        await closeAll([p, ...receivers])
      }
    }
    /** @param {string} name @param {string} pubUrl @param {string} subUrl */
    const lat = async (name, pubUrl, subUrl) => {
      const topic = `bench/lat/${RUN}/${results.length}`
      const [sub] = await clients(subUrl, 1, `ls${results.length}`)
      const s = /** @type {BenchClient} */ (sub)
      await withTimeout(s.subscribe(topic, 0), 10_000, 'subscribe')
      const [pub] = await clients(pubUrl, 1, `lp${results.length}`)
      const p = /** @type {BenchClient} */ (pub)
      try {
        say(name)
        results.push({ scenario: name, ...await latency({ pub: p, topic, receiver: s, rate: o.rate, durationMs: d }) })
      } finally {
        await closeAll([p, s])
      }
    }

    const redisPid = redis.pid
    await fan('fan-out MQTT -> /ws, one node alone', u(single, 'mqtt'), [u(single, 'ws')], o.subs, [single.pid])
    await fan('fan-out MQTT -> /ws, one node on Redis', u(a, 'mqtt'), [u(a, 'ws')], o.subs, [a.pid, redisPid])
    await fan('fan-out MQTT -> /ws, two nodes (subscribers split)', u(a, 'mqtt'), [u(a, 'ws'), u(b, 'ws')], o.subs, [a.pid, b.pid, redisPid])
    await fan('MQTT -> /ws, one node alone', u(single, 'mqtt'), [u(single, 'ws')], 1, [single.pid])
    await fan('MQTT -> /ws, node A -> node B', u(a, 'mqtt'), [u(b, 'ws')], 1, [a.pid, b.pid, redisPid])
    await fan('/ws -> MQTT, one node alone', u(single, 'ws'), [u(single, 'mqtt')], 1, [single.pid])
    await fan('/ws -> MQTT, node A -> node B', u(a, 'ws'), [u(b, 'mqtt')], 1, [a.pid, b.pid, redisPid])
    await fan('/ws chat (history), one node alone', u(single, 'ws'), [u(single, 'ws')], 1, [single.pid], 'chat')
    await fan('/ws chat (history), node A -> node B', u(a, 'ws'), [u(b, 'ws')], 1, [a.pid, b.pid, redisPid], 'chat')
    await lat(`latency MQTT -> /ws at ${o.rate}/s, one node alone`, u(single, 'mqtt'), u(single, 'ws'))
    await lat(`latency MQTT -> /ws at ${o.rate}/s, one node on Redis`, u(a, 'mqtt'), u(a, 'ws'))
    await lat(`latency MQTT -> /ws at ${o.rate}/s, node A -> node B`, u(a, 'mqtt'), u(b, 'ws'))
  } finally {
    for (const p of procs.reverse()) await p.stop()
  }

  const pad = (/** @type {unknown} */ v, /** @type {number} */ n) => String(v ?? '').padStart(n)
  process.stdout.write(`\n${'scenario'.padEnd(58)}${pad('msg/s', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('cpu', 7)}\n`)
  for (const r of results) {
    const rr = /** @type {Record<string, unknown>} */ (r)
    process.stdout.write(`${String(rr.scenario).padEnd(58)}${pad(rr.msgPerSec ?? `${rr.received}/${rr.expected}`, 9)}${pad(rr.p50, 9)}${pad(rr.p99, 9)}${pad(rr.serverCpu ?? '', 7)}\n`)
  }
  const load = [load0, os.loadavg()[0] ?? 0].map((x) => x.toFixed(1)).join(' -> ')
  process.stdout.write(`\nmsg/s: deliveries per second (all subscribers); cpu: server CPU seconds per second (gateways + redis).\n${os.cpus().length} cores, load average ${load} (other work on the machine skews every figure; compare rows of one run).\n`)
  process.stdout.write(JSON.stringify({ bench: 'cluster', duration: o.duration, subs: o.subs, window: o.window, rate: o.rate, cores: os.cpus().length, loadavg: load, results }) + '\n')
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`cluster-bench: ${err?.stack ?? err}\n`)
  process.exit(1)
})
