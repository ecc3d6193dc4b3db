#!/usr/bin/env node
// @ts-check
/**
 * The bench load generator. Points at any MQTT/TCP (mqtt://), MQTT/WS (ws://.../mqtt)
 * or /ws hub (ws://.../ws) endpoint, runs one scenario, prints one JSON line with the
 * result on stdout (progress and errors go to stderr). Loopback only; every run is
 * bounded in count and time.
 *
 *   node bench/loadgen.mjs fanout  --pub URL --sub URL [--subs 100] [--window 64] [--duration 5] [--warmup 1]
 *   node bench/loadgen.mjs fanin   --pub URL --sub URL [--pubs 100] [--window 200] [--qos 0|1]
 *   node bench/loadgen.mjs rate    --pub URL --sub URL [--subs 100] --rate 100 [--duration 5]
 *   node bench/loadgen.mjs connect --url URL --count 10000 [--concurrency 200] [--hold 60]
 *
 * fanout and fanin are closed-loop: at most `window` messages are in flight (published
 * and not yet received by every subscriber). rate is open-loop: `rate` messages per
 * second on a fixed schedule whatever the server does (it never waits for a delivery);
 * latency runs from the actual send, and `sendLagP99` says how far behind its schedule
 * the generator sent. connect opens `count` idle
 * connections, prints the result, holds them until stdin says `close` (or `hold`
 * seconds pass), then exits.
 */
import { createInterface } from 'node:readline'
import { connect, withTimeout } from './lib/clients.mjs'
import { nowUs, readSeq, readTs } from './lib/payload.mjs'
import { Samples, round3 } from './lib/samples.mjs'

/** @typedef {import('./lib/clients.mjs').BenchClient} BenchClient */

const RUN = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`

/** @param {string[]} argv */
function parseArgs (argv) {
  /** @type {Record<string, string>} */
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = /** @type {string} */ (argv[i])
    if (!a.startsWith('--')) continue
    const next = argv[i + 1]
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = 'true'
    else { out[a.slice(2)] = next; i++ }
  }
  return out
}

/** @param {Record<string, string>} a @param {string} k @param {number} d */
function num (a, k, d) {
  const v = a[k]
  if (v === undefined) return d
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a non-negative number`)
  return n
}

/** @param {Record<string, string>} a @param {string} k */
function str (a, k) {
  const v = a[k]
  if (!v || v === 'true') throw new Error(`--${k} URL is required`)
  return v
}

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (/** @type {string} */ msg) => process.stderr.write(`loadgen: ${msg}\n`)

/**
 * Opens `count` clients, `concurrency` at a time.
 * @param {string} url @param {number} count @param {string} role @param {number} [concurrency]
 * @returns {Promise<BenchClient[]>}
 */
async function connectMany (url, count, role, concurrency = 50) {
  /** @type {BenchClient[]} */
  const out = new Array(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      out[i] = await connect(url, { clientId: `bench-${RUN}-${role}-${i}` })
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return out
}

/** @param {BenchClient[]} clients */
async function closeAll (clients) {
  for (const c of clients) c.close()
  await withTimeout(Promise.all(clients.map((c) => c.closed)), 3000, 'close').catch(() => {})
}

/**
 * The closed-loop engine shared by fanout and fanin: publishes whenever fewer than
 * `window` messages are incomplete, where a message is complete once `perMessage`
 * deliveries of it arrived.
 * @param {{ publishers: BenchClient[], topics: string[], receivers: BenchClient[], perMessage: number,
 *   window: number, qos: 0 | 1, warmupMs: number, durationMs: number }} o
 */
async function closedLoop (o) {
  const RING = 1 << 16
  const MASK = RING - 1
  if (o.window >= RING / 2) throw new Error('--window too large')
  const counts = new Uint16Array(RING)
  const lat = new Samples()
  let published = 0
  let completed = 0
  let delivered = 0
  let measuring = false
  let running = true
  let rr = 0
  let floorSeq = 0
  let lost = 0
  let lastCompleted = 0
  let lastCompletion = Date.now()
  const P = o.publishers.length
  const pump = () => {
    while (running && published - completed < o.window) {
      const pub = /** @type {BenchClient} */ (o.publishers[rr])
      const topic = /** @type {string} */ (o.topics[rr])
      rr = rr + 1 === P ? 0 : rr + 1
      pub.publish(topic, nowUs(), published++, o.qos)
    }
  }
  /** @param {Buffer} buf @param {number} at */
  const onPayload = (buf, at) => {
    delivered++
    if (measuring) lat.add(nowUs() - readTs(buf, at))
    const seq = readSeq(buf, at)
    if (seq < floorSeq) return // a message already given up for lost
    const k = seq & MASK
    if (++counts[k] === o.perMessage) {
      counts[k] = 0
      completed++
      pump()
    }
  }
  for (const r of o.receivers) r.onPayload = onPayload

  let lastDelivered = -1
  let lastProgress = Date.now()
  let stalled = false
  const STALL_MS = 3000
  // QoS 0 may be dropped (Mosquitto drops past its queue limits): a message still
  // incomplete after LOSS_MS is given up for lost so the window does not shrink for ever.
  const LOSS_MS = 1000
  const watchdog = setInterval(() => {
    const now = Date.now()
    if (completed !== lastCompleted) { lastCompleted = completed; lastCompletion = now }
    else if (running && published > completed && now - lastCompletion > LOSS_MS) {
      lost += published - completed
      floorSeq = published
      completed = published
      counts.fill(0)
      lastCompletion = now
      pump()
    }
    if (delivered !== lastDelivered) { lastDelivered = delivered; lastProgress = now; return }
    if (now - lastProgress > STALL_MS) { stalled = true; running = false }
  }, 100)

  pump()
  await sleep(o.warmupMs)
  delivered = 0
  const publishedAtStart = published
  lat.reset()
  measuring = true
  process.stderr.write('@mark start\n') // the orchestrator samples the server's CPU time here
  const cpu0 = process.cpuUsage()
  const t0 = nowUs()
  const deadline = Date.now() + o.durationMs
  while (Date.now() < deadline && running) await sleep(Math.min(100, deadline - Date.now()))
  const seconds = (nowUs() - t0) / 1e6
  const cpu = process.cpuUsage(cpu0)
  process.stderr.write('@mark end\n')
  measuring = false
  const measured = delivered
  const sent = published - publishedAtStart
  running = false
  clearInterval(watchdog)
  // Let what is in flight land (bounded) so closing does not count as loss.
  const drainUntil = Date.now() + 2000
  while (completed < published && Date.now() < drainUntil) await sleep(20)
  const closedEarly = o.receivers.filter((r) => r.closeReason !== undefined).length
  return {
    msgPerSec: Math.round(measured / seconds),
    publishedPerSec: Math.round(sent / seconds),
    seconds: round3(seconds),
    ...lat.summaryMs(),
    window: o.window,
    // Share of one core the load generator used: near 1.0 means it, not the server, was the limit.
    loadgenCpu: round3((cpu.user + cpu.system) / 1e6 / seconds),
    lost,
    incomplete: published - completed,
    stalled,
    closedEarly
  }
}

/** @param {Record<string, string>} a */
async function fanout (a) {
  const subsN = num(a, 'subs', 100)
  const qos = /** @type {0 | 1} */ (num(a, 'qos', 0) ? 1 : 0)
  const topic = `bench/fo/${RUN}`
  const subs = await connectMany(str(a, 'sub'), subsN, 'sub')
  await Promise.all(subs.map((s) => withTimeout(s.subscribe(topic, qos), 10_000, 'subscribe')))
  const [pub] = await connectMany(str(a, 'pub'), 1, 'pub')
  const p = /** @type {BenchClient} */ (pub)
  try {
    const r = await closedLoop({
      publishers: [p], topics: [topic], receivers: subs, perMessage: subsN, window: num(a, 'window', 64), qos,
      warmupMs: num(a, 'warmup', 1) * 1000, durationMs: num(a, 'duration', 5) * 1000
    })
    return { scenario: 'fanout', pub: a.pub, sub: a.sub, subscribers: subsN, qos, ...r }
  } finally {
    await closeAll([p, ...subs])
  }
}

/** @param {Record<string, string>} a */
async function fanin (a) {
  const pubsN = num(a, 'pubs', 100)
  const qos = /** @type {0 | 1} */ (num(a, 'qos', 0) ? 1 : 0)
  const base = `bench/fi/${RUN}`
  const [sub] = await connectMany(str(a, 'sub'), 1, 'sub')
  const s = /** @type {BenchClient} */ (sub)
  await withTimeout(s.subscribe(`${base}/+`, qos), 10_000, 'subscribe')
  const pubs = await connectMany(str(a, 'pub'), pubsN, 'pub')
  try {
    const r = await closedLoop({
      publishers: pubs, topics: pubs.map((_p, i) => `${base}/${i}`), receivers: [s], perMessage: 1,
      window: num(a, 'window', 200), qos, warmupMs: num(a, 'warmup', 1) * 1000, durationMs: num(a, 'duration', 5) * 1000
    })
    return { scenario: 'fanin', pub: a.pub, sub: a.sub, publishers: pubsN, qos, ...r }
  } finally {
    await closeAll([s, ...pubs])
  }
}

/** Open loop at a fixed publish rate. @param {Record<string, string>} a */
async function rate (a) {
  const subsN = num(a, 'subs', 100)
  const ratePerSec = num(a, 'rate', 100)
  if (ratePerSec <= 0) throw new Error('--rate must be positive')
  const durationMs = num(a, 'duration', 5) * 1000
  const warmupMs = num(a, 'warmup', 0.5) * 1000
  const topic = `bench/rate/${RUN}`
  const subs = await connectMany(str(a, 'sub'), subsN, 'sub')
  await Promise.all(subs.map((s) => withTimeout(s.subscribe(topic, 0), 10_000, 'subscribe')))
  const [pub] = await connectMany(str(a, 'pub'), 1, 'pub')
  const p = /** @type {BenchClient} */ (pub)
  const lat = new Samples()
  // How late the load generator sent against its schedule: latency is measured from the
  // actual send, so this shows whether the generator itself kept the rate.
  const lag = new Samples(1_000_000)
  let measureFromSeq = Infinity
  let delivered = 0
  /** @param {Buffer} buf @param {number} at */
  const onPayload = (buf, at) => {
    if (readSeq(buf, at) < measureFromSeq) return
    delivered++
    lat.add(nowUs() - readTs(buf, at))
  }
  for (const s of subs) s.onPayload = onPayload
  const intervalUs = 1e6 / ratePerSec
  const start = nowUs()
  const totalMsgs = Math.floor((warmupMs + durationMs) / 1000 * ratePerSec)
  measureFromSeq = Math.floor(warmupMs / 1000 * ratePerSec)
  let sent = 0
  try {
    await new Promise((resolve) => {
      const tick = () => {
        const now = nowUs()
        // Everything due by now goes, each stamped with the time it was due.
        while (sent < totalMsgs && start + sent * intervalUs <= now) {
          if (sent === measureFromSeq) process.stderr.write('@mark start\n')
          if (sent >= measureFromSeq) lag.add(now - (start + sent * intervalUs))
          p.publish(topic, now, sent, 0)
          sent++
        }
        if (sent >= totalMsgs) { process.stderr.write('@mark end\n'); return resolve(undefined) }
        const waitMs = (start + sent * intervalUs - nowUs()) / 1000
        setTimeout(tick, Math.max(0, Math.floor(waitMs)))
      }
      tick()
    })
    const expected = (totalMsgs - measureFromSeq) * subsN
    const drainUntil = Date.now() + Math.max(3000, durationMs)
    while (delivered < expected && Date.now() < drainUntil) await sleep(20)
    const seconds = (totalMsgs - measureFromSeq) / ratePerSec
    return {
      scenario: 'rate',
      pub: a.pub,
      sub: a.sub,
      subscribers: subsN,
      rate: ratePerSec,
      deliveriesPerSec: Math.round(ratePerSec * subsN),
      achievedPerSec: Math.round(delivered / seconds),
      delivered: round3(delivered / expected),
      ...lat.summaryMs(),
      sendLagP99: lag.summaryMs().p99,
      closedEarly: subs.filter((s) => s.closeReason !== undefined).length
    }
  } finally {
    await closeAll([p, ...subs])
  }
}

/** Opens idle connections and holds them. @param {Record<string, string>} a */
async function connections (a) {
  const url = str(a, 'url')
  const count = num(a, 'count', 1000)
  const concurrency = num(a, 'concurrency', 200)
  const holdMs = num(a, 'hold', 60) * 1000
  /** @type {BenchClient[]} */
  const clients = []
  const lat = new Samples(count + 1)
  let failed = 0
  /** @type {string | undefined} */
  let firstError
  let next = 0
  const t0 = nowUs()
  const worker = async () => {
    while (next < count) {
      const i = next++
      const c0 = nowUs()
      try {
        clients.push(await connect(url, { clientId: `bench-${RUN}-idle-${i}`, timeoutMs: 20_000 }))
        lat.add(nowUs() - c0)
      } catch (err) {
        failed++
        firstError ??= /** @type {Error} */ (err).message
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  const totalMs = (nowUs() - t0) / 1000
  const s = lat.summaryMs()
  const result = {
    scenario: 'connect',
    url,
    count,
    connected: clients.length,
    failed,
    firstError,
    totalMs: Math.round(totalMs),
    connPerSec: Math.round(clients.length / (totalMs / 1000)),
    connectP50: s.p50,
    connectP99: s.p99
  }
  process.stdout.write(JSON.stringify({ event: 'ready', ...result }) + '\n')
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, holdMs)
    const rl = createInterface({ input: process.stdin })
    rl.on('line', (line) => { if (line.trim() === 'close') { clearTimeout(timer); rl.close(); resolve(undefined) } })
    rl.on('close', () => { clearTimeout(timer); resolve(undefined) })
  })
  const stillOpen = clients.filter((c) => c.closeReason === undefined).length
  await closeAll(clients)
  return { ...result, stillOpenAtEnd: stillOpen }
}

const SCENARIOS = { fanout, fanin, rate, connect: connections }

async function main () {
  const [name, ...rest] = process.argv.slice(2)
  const fn = SCENARIOS[/** @type {keyof typeof SCENARIOS} */ (name)]
  if (!fn) {
    process.stderr.write('usage: node bench/loadgen.mjs fanout|fanin|rate|connect [--pub URL --sub URL | --url URL] [options]\n')
    process.exit(2)
  }
  const args = parseArgs(rest)
  // A hard ceiling on every run, whatever the options say.
  const ceilingMs = num(args, 'max-seconds', 300) * 1000
  const ceiling = setTimeout(() => { log(`run exceeded ${ceilingMs / 1000} s; giving up`); process.exit(3) }, ceilingMs)
  ceiling.unref()
  const result = await fn(args)
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: String(err?.message ?? err) }) + '\n')
  log(String(err?.stack ?? err))
  process.exit(1)
})
