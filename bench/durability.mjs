// @ts-check
// The cost of durability, measured in one run (issue 4):
//  - chat messages/s acked over /ws with the on-disk log versus --memory;
//  - MQTT QoS 1 publishes/s with the held PUBACK versus stock Aedes order,
//    with an offline persistent session matching every message.
// `npm run bench` runs it as one of its parts (measureDurability); on its own:
// Usage: npm run build && node bench/durability.mjs [--seconds 4] [--rounds 3]
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import mqtt from 'mqtt'
import { startGateway } from './lib/servers.mjs'
import { median } from './lib/samples.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const WINDOW = 64

/** A gateway for one case: a fresh --data-dir unless the case runs --memory. @param {string[]} args */
async function startCase (args) {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-bench-dur-'))
  // The per-client message rate limit (1,000/s by default) would measure the limiter,
  // not the store: this bench is one client sending as fast as it is acked.
  const gw = await startGateway(root, undefined, ['--msg-rate', '0', ...(args.includes('--memory') ? [] : ['--data-dir', dir]), ...args])
  return {
    urls: gw.urls,
    async stop () {
      await gw.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Closed loop: WINDOW chat frames in flight, counting acks for `seconds`. @param {string} wsUrl @param {number} seconds */
async function chatRate (wsUrl, seconds) {
  const ws = new WebSocket(`${wsUrl}?name=bench&room=bench&presence=0`)
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j) })
  let acked = 0
  let next = 0
  let stopAt = 0
  const done = new Promise((resolve) => {
    ws.on('message', (data) => {
      const s = data.toString()
      if (s.includes('"error"')) throw new Error(`the gateway refused a chat frame: ${s}`)
      if (!s.includes('"ack"')) return
      acked++
      if (Date.now() < stopAt) ws.send(JSON.stringify({ type: 'chat', text: `m${next}`, id: `c${next++}` }))
      else if (acked === next) resolve(undefined)
    })
  })
  stopAt = Date.now() + seconds * 1000
  const t0 = Date.now()
  for (let i = 0; i < WINDOW; i++) ws.send(JSON.stringify({ type: 'chat', text: `m${next}`, id: `c${next++}` }))
  await done
  const rate = acked / ((Date.now() - t0) / 1000)
  ws.close()
  return rate
}

/** Closed loop: WINDOW QoS 1 publishes in flight for `seconds`, with an offline persistent subscriber. @param {string} mqttUrl @param {number} seconds */
async function qos1Rate (mqttUrl, seconds) {
  const sub = await mqtt.connectAsync(mqttUrl, { clientId: `bench-sub-${Math.random().toString(36).slice(2)}`, clean: false, reconnectPeriod: 0 })
  await sub.subscribeAsync('bench/q1/#', { qos: 1 })
  await sub.endAsync()
  const pub = await mqtt.connectAsync(mqttUrl, { clientId: `bench-pub-${Math.random().toString(36).slice(2)}`, reconnectPeriod: 0 })
  const stopAt = Date.now() + seconds * 1000
  const t0 = Date.now()
  let acked = 0
  const payload = Buffer.alloc(64, 120)
  const worker = async () => {
    while (Date.now() < stopAt) {
      await pub.publishAsync('bench/q1/x', payload, { qos: 1 })
      acked++
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, worker))
  const rate = acked / ((Date.now() - t0) / 1000)
  await pub.endAsync()
  return rate
}

const cases = {
  chatDisk: { args: [], run: (g, s) => chatRate(g.urls.ws, s) },
  chatMemory: { args: ['--memory'], run: (g, s) => chatRate(g.urls.ws, s) },
  qos1Held: { args: [], run: (g, s) => qos1Rate(g.urls.mqtt, s) },
  qos1Stock: { args: ['--hold-puback', 'false'], run: (g, s) => qos1Rate(g.urls.mqtt, s) }
}

/**
 * Every case once per round, the order alternating; ratios are the median of each
 * round's own ratio (the two sides of a round ran within seconds of each other).
 * @param {{ seconds?: number, rounds?: number, log?: (msg: string) => void }} [o]
 */
export async function measureDurability (o = {}) {
  const seconds = o.seconds ?? 4
  const rounds = o.rounds ?? 3
  /** @type {Record<string, number[]>} */
  const raw = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  for (let round = 0; round < rounds; round++) {
    // Alternate the order each round so drift on a noisy machine does not favour one side.
    const names = round % 2 ? Object.keys(cases).reverse() : Object.keys(cases)
    for (const name of names) {
      const c = cases[/** @type {keyof typeof cases} */ (name)]
      const g = await startCase(c.args)
      try { raw[name]?.push(await c.run(g, seconds)) } finally { await g.stop() }
      o.log?.(`[${round + 1}/${rounds}] durability ${name}: ${Math.round(raw[name]?.at(-1) ?? 0)} msg/s`)
    }
  }
  const medians = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, median(v)]))
  const paired = (/** @type {string} */ a, /** @type {string} */ b) => median((raw[a] ?? []).map((x, i) => x / (raw[b]?.[i] ?? NaN)))
  return { seconds, rounds, window: WINDOW, raw, medians, chatRatio: paired('chatDisk', 'chatMemory'), qosRatio: paired('qos1Held', 'qos1Stock') }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (/** @type {string} */ name, /** @type {number} */ dflt) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : dflt }
  const r = await measureDurability({ seconds: arg('seconds', 4), rounds: arg('rounds', 3) })
  const m = r.medians
  const rows = [
    ['chat msg/s acked, on-disk log', m.chatDisk],
    ['chat msg/s acked, --memory', m.chatMemory],
    ['QoS 1 msg/s, held PUBACK', m.qos1Held],
    ['QoS 1 msg/s, stock Aedes order', m.qos1Stock]
  ]
  console.log(`durability cost, medians of ${r.rounds} rounds of ${r.seconds} s, window ${WINDOW}`)
  for (const [k, v] of rows) console.log(`${String(k).padEnd(34)} ${Math.round(Number(v))}`)
  console.log(`chat disk/memory ratio ${(r.chatRatio ?? NaN).toFixed(2)} (loss ${(100 * (1 - (r.chatRatio ?? NaN))).toFixed(0)}%, goal < 30%)`)
  console.log(`QoS 1 held/stock ratio ${(r.qosRatio ?? NaN).toFixed(2)} (loss ${(100 * (1 - (r.qosRatio ?? NaN))).toFixed(0)}%, goal < 30%)`)
  mkdirSync(join(root, 'bench', 'results'), { recursive: true })
  writeFileSync(join(root, 'bench', 'results', 'durability.json'), JSON.stringify({ date: new Date().toISOString(), ...r }, null, 2))
}
