#!/usr/bin/env node
// @ts-check
// N simulated low-power sensors over MQTT/TCP, and a small load tool.
//
// Each device behaves as the sketch in examples/arduino/mqtt-sensor does (a test keeps
// the two identical): a stable client id, a persistent session (clean: false), QoS 1,
// a keepalive, a retained last will `offline` on presence/<id>, small readings
// `{"v":21.50,"ts":<ms since epoch>}` on sensors/<id>/<kind>, and commands on
// cmd/<id>/#: `interval` (milliseconds between readings) and `led` (on, off, toggle;
// the new state is reported, retained, on sensors/<id>/led as {"v":1,"ts":...}).
// A device that loses its connection comes back after an exponential backoff with
// full jitter, so a thousand devices do not knock on a restarted gateway at once.
//
//   node examples/device-sim.mjs --count 3 --interval 2000 --duration 30
//   node examples/device-sim.mjs --count 1000 --interval 5000 --duration 60 \
//        --hub ws://localhost:3000/ws --report      # connect time, delivery latency
import { randomInt } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt'
import WebSocket from 'ws'

const HELP = `usage: node examples/device-sim.mjs [options]

  --url URL            broker (mqtt://localhost:1883)
  --count N            devices (1), ids <prefix>-1 ... <prefix>-N; 0 with --hub: only
                       measure the readings of <prefix>-* devices run elsewhere
  --prefix P           client id prefix (dev)
  --interval MS        milliseconds between readings per device (5000)
  --kinds LIST         reading kinds, comma separated (temp)
  --qos 0|1            QoS of readings and subscriptions (1)
  --keepalive S        MQTT keepalive in seconds (30)
  --duration S         run this many seconds, then stop (60; at most 86400)
  --steady S           stop S seconds after the last device connected (load runs:
                       the same measuring time whatever connecting took); --duration
                       still bounds the whole run
  --end clean|abrupt   stop with DISCONNECT (clean) or by dropping the sockets, so
                       that the gateway publishes each device's will (clean)
  --concurrency N      connections being opened at once (100)
  --hub URL            also join the /ws hub (ws://localhost:3000/ws), subscribe to
                       sensors/#, and measure delivery latency from each reading's ts
  --report             print one JSON summary on stdout instead of per-device lines`

/** A device never publishes faster than this, whatever a command asks. */
const MIN_INTERVAL_MS = 100
/** Nor slower: an hour between readings. */
const MAX_INTERVAL_MS = 3_600_000
/** Runs are bounded: a forgotten simulator stops after a day at most. */
const MAX_DURATION_S = 86_400
/** Backoff after a lost connection: first ceiling, and the cap it doubles up to. */
const BACKOFF_BASE_MS = 1000
const BACKOFF_CAP_MS = 30_000
/** How long the stop may take before we exit anyway. */
const STOP_TIMEOUT_MS = 10_000
/** Latency samples kept (about 8 MB); later ones are counted but not kept. */
const MAX_SAMPLES = 1_000_000

/**
 * @typedef {{
 *   url: string, count: number, prefix: string, interval: number, kinds: string[],
 *   qos: 0 | 1, keepalive: number, duration: number, steady: number | undefined, end: 'clean' | 'abrupt',
 *   concurrency: number, hub: string | undefined, report: boolean
 * }} SimOptions
 */

/** @returns {SimOptions} */
function readOptions () {
  const { values: v } = parseArgs({
    options: {
      url: { type: 'string', default: 'mqtt://localhost:1883' },
      count: { type: 'string', short: 'n', default: '1' },
      prefix: { type: 'string', default: 'dev' },
      interval: { type: 'string', default: '5000' },
      kinds: { type: 'string', default: 'temp' },
      qos: { type: 'string', default: '1' },
      keepalive: { type: 'string', default: '30' },
      duration: { type: 'string', default: '60' },
      steady: { type: 'string' },
      end: { type: 'string', default: 'clean' },
      concurrency: { type: 'string', default: '100' },
      hub: { type: 'string' },
      report: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (v.help) { console.log(HELP); process.exit(0) }
  /** @type {(flag: string, raw: string | undefined, min: number, max: number) => number} */
  const int = (flag, raw, min, max) => {
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) fail(`--${flag} must be an integer from ${min} to ${max}, not ${raw}`)
    return n
  }
  const qos = int('qos', v.qos, 0, 1)
  if (v.end !== 'clean' && v.end !== 'abrupt') fail(`--end must be clean or abrupt, not ${v.end}`)
  const kinds = (v.kinds ?? '').split(',').map((k) => k.trim()).filter(Boolean)
  if (kinds.length === 0 || kinds.some((k) => /[+#/]/.test(k))) fail('--kinds must be names without / + #')
  if (/[+#/]/.test(v.prefix ?? '')) fail('--prefix must not contain / + #')
  return {
    url: v.url ?? '',
    count: int('count', v.count, v.hub ? 0 : 1, 100_000),
    prefix: v.prefix ?? 'dev',
    interval: int('interval', v.interval, MIN_INTERVAL_MS, MAX_INTERVAL_MS),
    kinds,
    qos: qos === 0 ? 0 : 1,
    // Not 0: with no keepalive the gateway never notices a device that went silent,
    // and its presence would say online for ever. At most an hour, the same reason.
    keepalive: int('keepalive', v.keepalive, 1, 3600),
    duration: int('duration', v.duration, 1, MAX_DURATION_S),
    steady: v.steady === undefined ? undefined : int('steady', v.steady, 1, MAX_DURATION_S),
    end: v.end === 'abrupt' ? 'abrupt' : 'clean',
    concurrency: int('concurrency', v.concurrency, 1, 10_000),
    hub: v.hub,
    report: v.report ?? false
  }
}

/** @param {string} msg @returns {never} */
function fail (msg) {
  console.error(`device-sim: ${msg}`)
  process.exit(2)
}

// The wire format, identical to the sketches' printf formats
// (sensors/%s/%s, {"v":%.2f,"ts":%llu}, {"v":%d,"ts":%llu}, presence/%s, cmd/%s/#).
/** @param {string} id @param {string} kind */
const readingTopic = (id, kind) => `sensors/${id}/${kind}`
/** @param {number} v @param {number} ts */
const readingPayload = (v, ts) => `{"v":${v.toFixed(2)},"ts":${ts}}`
/** @param {boolean} on @param {number} ts */
const statePayload = (on, ts) => `{"v":${on ? 1 : 0},"ts":${ts}}`
/** @param {string} id */
const presenceTopic = (id) => `presence/${id}`
/** @param {string} id */
const commandFilter = (id) => `cmd/${id}/#`
const WILL_PAYLOAD = 'offline'

/** A plausible value for a reading kind, wandering slowly. @type {Record<string, [number, number]>} */
const RANGES = { temp: [18, 26], hum: [35, 65], lux: [0, 800], co2: [400, 1200] }

class Counters {
  published = 0
  acked = 0
  skipped = 0
  reconnects = 0
  commands = 0
  connected = 0
  /** @type {number[]} ms from start to each device's first CONNACK */
  connectMs = []
}

/**
 * One simulated device: its own MQTT connection, timer and state.
 */
class Device {
  /** @type {import('mqtt').MqttClient | undefined} */
  client
  interval
  led = false
  attempt = 0
  /** @type {NodeJS.Timeout | undefined} */
  #timer
  /** @type {NodeJS.Timeout | undefined} */
  #retry
  #stopping = false
  /** @type {Record<string, number>} */
  #values = {}

  /**
   * @param {string} id
   * @param {SimOptions} opts
   * @param {Counters} counters
   * @param {(line: string) => void} say
   */
  constructor (id, opts, counters, say) {
    this.id = id
    this.opts = opts
    this.counters = counters
    this.say = say
    this.interval = opts.interval
  }

  /**
   * Connects; resolves at the first CONNACK or the first failure (retries go on).
   * @param {() => void} onFirstConnect called once, at the first CONNACK ever
   */
  start (onFirstConnect) {
    const t0 = performance.now()
    return new Promise((resolve) => {
      const client = mqtt.connect(this.opts.url, {
        clientId: this.id,
        clean: false, // a persistent session: commands sent while we sleep wait for us
        keepalive: this.opts.keepalive,
        reconnectPeriod: 0, // we reconnect ourselves, with backoff and jitter
        connectTimeout: 30_000,
        will: { topic: presenceTopic(this.id), payload: Buffer.from(WILL_PAYLOAD), qos: 1, retain: true }
      })
      this.client = client
      let first = true
      let everConnected = false
      client.on('connect', (connack) => {
        if (!everConnected) {
          everConnected = true
          this.counters.connectMs.push(performance.now() - t0)
          onFirstConnect()
        }
        this.attempt = 0
        this.say(`${this.id} connected (session present: ${connack.sessionPresent})`)
        // Subscribed on every connect, as the sketch does (it cannot see sessionPresent);
        // with a session present the broker just replaces the same subscription.
        client.subscribe(commandFilter(this.id), { qos: this.opts.qos }, (err) => {
          if (err && !this.#stopping) this.say(`${this.id} subscribe failed: ${err.message}`)
        })
        if (first) { first = false; this.#schedule(randomInt(0, this.interval)); resolve(undefined) }
      })
      client.on('message', (topic, payload) => this.#command(topic, payload.toString('utf8')))
      // A refused or broken connection ends in 'close', handled there; say why here.
      client.on('error', (err) => { if (!this.#stopping) this.say(`${this.id} error: ${err.message}`) })
      client.on('close', () => {
        if (this.#stopping) return
        if (first) { first = false; resolve(undefined) }
        this.#backoff()
      })
    })
  }

  #backoff () {
    if (this.#retry || this.#stopping) return
    // Full jitter: a random wait below a ceiling that doubles with every failure.
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt)
    const wait = randomInt(0, ceiling + 1)
    this.attempt++
    this.counters.reconnects++
    this.say(`${this.id} offline; retrying in ${wait} ms`)
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      const c = this.client
      // Keep the stores: QoS 1 readings not yet acknowledged are sent again.
      if (c && !this.#stopping) c.reconnect({ incomingStore: c.incomingStore, outgoingStore: c.outgoingStore })
    }, wait)
  }

  /** @param {number} ms */
  #schedule (ms) {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.#publishReadings(); this.#schedule(this.interval) }, ms)
  }

  #publishReadings () {
    const c = this.client
    for (const kind of this.opts.kinds) {
      // A sensor that cannot reach the gateway drops the reading rather than hoard it.
      if (!c || !c.connected) { this.counters.skipped++; continue }
      const [lo, hi] = RANGES[kind] ?? [0, 100]
      const prev = this.#values[kind] ?? (lo + hi) / 2
      const v = Math.min(hi, Math.max(lo, prev + (Math.random() - 0.5) * (hi - lo) * 0.05))
      this.#values[kind] = v
      this.counters.published++
      c.publish(readingTopic(this.id, kind), readingPayload(v, Date.now()), { qos: this.opts.qos }, (err) => {
        if (!err) this.counters.acked++
      })
    }
  }

  /** @param {string} topic @param {string} payload */
  #command (topic, payload) {
    const name = topic.slice(`cmd/${this.id}/`.length)
    this.counters.commands++
    switch (name) {
      case 'interval': {
        const ms = Number(payload)
        if (!Number.isInteger(ms) || ms < MIN_INTERVAL_MS || ms > MAX_INTERVAL_MS) {
          this.say(`${this.id} ignored interval ${JSON.stringify(payload)} (${MIN_INTERVAL_MS}..${MAX_INTERVAL_MS} ms)`)
          return
        }
        this.interval = ms
        this.#schedule(ms)
        this.say(`${this.id} interval ${ms}`)
        return
      }
      case 'led': {
        this.led = payload === 'on' ? true : payload === 'off' ? false : !this.led
        this.say(`${this.id} led ${this.led ? 'on' : 'off'}`)
        this.client?.publish(readingTopic(this.id, 'led'), statePayload(this.led, Date.now()), { qos: this.opts.qos, retain: true })
        return
      }
      default:
        this.say(`${this.id} unknown command ${name}`)
    }
  }

  /** Stops for good: DISCONNECT (clean, the will is discarded) or drop the socket (the will fires). */
  stop () {
    this.#stopping = true
    clearTimeout(this.#timer)
    clearTimeout(this.#retry)
    const c = this.client
    if (!c) return Promise.resolve()
    return new Promise((resolve) => c.end(this.opts.end === 'abrupt', {}, () => resolve(undefined)))
  }
}

/**
 * A /ws hub client that subscribes to sensors/# and measures, for every reading of
 * ours, the time from its `ts` to its arrival here (and the gateway's stamp between).
 */
class HubProbe {
  /** @type {number[]} */ total = []
  /** @type {number[]} */ toGateway = []
  /** @type {number[]} */ fromGateway = []
  received = 0
  measuring = false
  /** @type {number | undefined} */ closeCode

  /** @param {string} url @param {string} prefix */
  constructor (url, prefix) {
    const u = new URL(url)
    u.searchParams.set('name', 'device-sim-probe')
    u.searchParams.set('presence', '0') // thousands of devices: their presence is not what we measure
    this.ws = new WebSocket(u)
    this.topicPrefix = `sensors/${prefix}-`
  }

  /** Resolves once sensors/# is subscribed. */
  ready () {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the hub did not acknowledge sensors/# in 10 s')), 10_000)
      this.ws.on('error', (err) => { clearTimeout(timer); reject(err) })
      this.ws.on('close', (code) => { this.closeCode = code })
      this.ws.once('open', () => this.ws.send(JSON.stringify({ type: 'subscribe', topic: 'sensors/#', id: 'probe' })))
      this.ws.on('message', (data) => {
        const now = Date.now()
        const s = data.toString()
        // Parse only what we need: most frames are our readings.
        if (s.includes('"type":"ack"') && s.includes('"id":"probe"')) { clearTimeout(timer); resolve(undefined); return }
        if (!this.measuring || !s.startsWith('{"type":"message"')) return
        let f
        try { f = JSON.parse(s) } catch { return }
        if (typeof f.topic !== 'string' || !f.topic.startsWith(this.topicPrefix)) return
        let sent
        try { sent = JSON.parse(f.payload).ts } catch { return }
        if (typeof sent !== 'number') return
        this.received++
        if (this.total.length >= MAX_SAMPLES) return
        this.total.push(now - sent)
        if (typeof f.ts === 'number') { this.toGateway.push(f.ts - sent); this.fromGateway.push(now - f.ts) }
      })
    })
  }

  close () { this.ws.close(1000) }
}

/** @param {number[]} xs */
function percentiles (xs) {
  if (xs.length === 0) return null
  const s = Float64Array.from(xs).sort()
  /** @param {number} p */
  const at = (p) => Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0) * 10) / 10
  return { n: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) }
}

async function main () {
  const opts = readOptions()
  const counters = new Counters()
  const quiet = opts.report
  /** @type {(line: string) => void} */
  const say = quiet ? () => {} : (line) => console.log(line)
  const elu0 = performance.eventLoopUtilization()

  let probe
  if (opts.hub) {
    probe = new HubProbe(opts.hub, opts.prefix)
    try { await probe.ready() } catch (err) { fail(`hub ${opts.hub}: ${/** @type {Error} */ (err).message}`) }
  }

  const devices = Array.from({ length: opts.count }, (_, i) => new Device(`${opts.prefix}-${i + 1}`, opts, counters, say))
  let stopping = false
  /** @type {(value?: unknown) => void} */
  let wake = () => {}
  const stopped = new Promise((resolve) => { wake = resolve })
  const runTimer = setTimeout(() => wake(), opts.duration * 1000)
  process.once('SIGINT', () => wake())
  process.once('SIGTERM', () => wake())

  // Open connections a few at a time: a burst of thousands of SYNs overflows the
  // listen backlog and turns into retries that measure our backoff, not the gateway.
  // A device refused at first (a gateway's connect-rate limit, say) retries with its
  // backoff; "all connected" waits for the last one's first CONNACK.
  const t0 = performance.now()
  /** @type {() => void} */
  let everyoneUp = () => {}
  const allConnected = new Promise((resolve) => { everyoneUp = () => resolve(undefined) })
  const onFirstConnect = () => { if (++counters.connected === opts.count) everyoneUp() }
  if (opts.count === 0) everyoneUp()
  let next = 0
  const worker = async () => {
    while (next < devices.length && !stopping) await /** @type {Device} */ (devices[next++]).start(onFirstConnect)
  }
  for (let i = 0; i < Math.min(opts.concurrency, devices.length); i++) void worker()
  const allUp = await Promise.race([allConnected.then(() => true), stopped.then(() => false)])
  const connectAllMs = performance.now() - t0
  if (allUp) {
    console.error(`# connected ${counters.connected}/${opts.count} in ${Math.round(connectAllMs)} ms`)
    if (probe) probe.measuring = true
    if (opts.steady !== undefined) setTimeout(() => wake(), opts.steady * 1000).unref()
  }
  const steady0 = performance.now()
  await stopped
  stopping = true
  clearTimeout(runTimer)
  const steadyMs = performance.now() - steady0
  const elu = performance.eventLoopUtilization(elu0)
  console.error('# stopping')

  let stopTimer
  await Promise.race([
    Promise.allSettled(devices.map((d) => d.stop())),
    new Promise((resolve) => { stopTimer = setTimeout(resolve, STOP_TIMEOUT_MS) })
  ])
  clearTimeout(stopTimer)
  probe?.close()

  const summary = {
    devices: opts.count,
    connected: counters.connected,
    connectAllMs: allUp ? Math.round(connectAllMs) : null,
    connectMs: percentiles(counters.connectMs),
    intervalMs: opts.interval,
    qos: opts.qos,
    steadySeconds: Math.round(steadyMs / 100) / 10,
    published: counters.published,
    acked: counters.acked,
    skipped: counters.skipped,
    reconnects: counters.reconnects,
    commands: counters.commands,
    hub: probe
      ? { received: probe.received, latencyMs: percentiles(probe.total), deviceToGatewayMs: percentiles(probe.toGateway), gatewayToHubMs: percentiles(probe.fromGateway), closeCode: probe.closeCode ?? null }
      : null,
    simEventLoopUtilization: Math.round(elu.utilization * 100) / 100
  }
  if (opts.report) console.log(JSON.stringify(summary))
  else console.error(`# ${counters.published} readings sent, ${counters.acked} acknowledged, ${counters.reconnects} reconnects`)
  process.exit(0)
}

main().catch((err) => { console.error(`device-sim: ${err.stack ?? err}`); process.exit(1) })
