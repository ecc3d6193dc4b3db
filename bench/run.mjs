#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench`: builds, then measures the gateway beside the parts it is made of,
 * in one run on this machine, and prints one table of ratios against the targets of
 * issues 7 and 15. Writes bench/results/latest.json and bench/results/latency.svg; a full run
 * (not --quick) also writes docs/BENCH.md, docs/bench-latest.json and
 * docs/bench-latency.svg.
 *
 *   npm run bench                  full run (about 10-15 minutes on 2 cores)
 *   npm run bench -- --quick       smoke check (under a minute)
 *   node bench/run.mjs [--reps 3] [--duration 5] [--only fanout,fanin,cross,latency,sweep,connections,durability,join,storm]
 *                      [--no-mosquitto] [--no-docs] [--conns 10000] [--pin auto|on|off]
 *   node bench/run.mjs --render [bench/results/latest.json]   rewrite the docs from a results file
 *   node bench/run.mjs --only fanout --match gateway.mqtt --reps 5 --no-docs     a few measurements, for development
 *
 * Servers run pinned to core 0 and the load generator to core 1 (taskset) when the
 * machine is quiet (see pinning() in lib/servers.mjs), traffic
 * stays on 127.0.0.1, every run is bounded in time, and each measurement is repeated
 * with the servers taking turns, so background noise lands on all of them alike.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { GATEWAY_BENCH_FLAGS, cpuOf, pinned, pinning, rssOf, startAedes, startGateway, startMosquitto, startWsBroadcast } from './lib/servers.mjs'
import { median, round3 } from './lib/samples.mjs'
import { buildTargets, renderMarkdown, renderReadmeSection, renderTable, renderSvg } from './lib/report.mjs'
import { measureDurability } from './durability.mjs'
import { measureJoin, renderJoin } from './join.mjs'
import { measureStorm, renderStorm } from './storm.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const LOADGEN = join(ROOT, 'bench/loadgen.mjs')

/** @param {string[]} argv */
function parseOptions (argv) {
  const has = (/** @type {string} */ f) => argv.includes(f)
  const val = (/** @type {string} */ f) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined }
  const quick = has('--quick')
  const only = val('--only')?.split(',')
  return {
    quick,
    // Run-to-run spread of one fan-out figure here is about 15 %: five pairs are needed
    // to tell 0.9 from 1.0. Fan-in, latency and connections (no ratio targets, or far
    // from them) take three.
    reps: Number(val('--reps') ?? (quick ? 1 : 5)),
    duration: Number(val('--duration') ?? (quick ? 1 : 5)),
    warmup: quick ? 0.2 : 1,
    conns: Number(val('--conns') ?? (quick ? 300 : 10_000)),
    mosquitto: !has('--no-mosquitto'),
    docs: !quick && !has('--no-docs'),
    pin: /** @type {'auto' | 'on' | 'off'} */ (['on', 'off'].includes(String(val('--pin'))) ? val('--pin') : 'auto'),
    /** @param {string} part */
    wants: (part) => !only || only.includes(part)
  }
}

const opts = parseOptions(process.argv.slice(2))
const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100)
const pin = pinning(opts.pin)
const log = (/** @type {string} */ msg) => process.stderr.write(`bench: ${msg}\n`)

/**
 * Runs the load generator once; samples the server's CPU time between the marks the
 * load generator prints when it starts and stops measuring.
 * @param {string[]} args
 * @param {number | undefined} serverPid
 * @param {number} maxSeconds
 * @returns {Promise<Record<string, any>>}
 */
function loadgen (args, serverPid, maxSeconds) {
  const cmd = pinned(pin.loadgen, process.execPath, [LOADGEN, ...args, '--max-seconds', String(maxSeconds)])
  const child = spawn(cmd.cmd, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] })
  /** @type {number | undefined} */ let cpu0
  /** @type {number | undefined} */ let t0
  /** @type {number | undefined} */ let serverCpu
  /** @type {string[]} */
  const errTail = []
  createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stderr) }).on('line', (line) => {
    if (line === '@mark start' && serverPid) { cpu0 = cpuOf(serverPid); t0 = performance.now() }
    else if (line === '@mark end' && serverPid && cpu0 !== undefined && t0 !== undefined) {
      const c = cpuOf(serverPid)
      if (c !== undefined) serverCpu = (c - cpu0) / ((performance.now() - t0) / 1000)
    } else { errTail.push(line); if (errTail.length > 10) errTail.shift() }
  })
  let last = ''
  createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) }).on('line', (line) => { if (line.trim()) last = line })
  const killer = setTimeout(() => child.kill('SIGKILL'), (maxSeconds + 10) * 1000)
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(killer)
      /** @type {Record<string, any>} */
      let result
      try { result = JSON.parse(last) } catch { result = { error: `load generator exited ${code}: ${errTail.join(' | ')}` } }
      if (serverCpu !== undefined) result.serverCpu = round3(serverCpu)
      resolve(result)
    })
  })
}

/**
 * Waits until every server is idle again (under 10 % of a core over 250 ms), at most
 * `maxMs`. A server that just lost 101 clients is still busy for a moment (the gateway
 * publishes each MQTT client's offline presence, V8 collects): measured back to back,
 * that tail ran on the cores of the next measurement and cost whoever came next about
 * 10 %.
 * @param {Array<import('./lib/servers.mjs').Server | undefined>} list
 * @param {number} [maxMs]
 */
async function settle (list, maxMs = 5000) {
  const pids = list.filter((s) => s !== undefined).map((s) => /** @type {number} */ (s?.pid))
  const until = Date.now() + maxMs
  for (;;) {
    const before = pids.map((p) => cpuOf(p) ?? 0)
    await sleep(250)
    const busy = pids.some((p, i) => (cpuOf(p) ?? 0) - /** @type {number} */ (before[i]) > 0.025)
    if (!busy || Date.now() > until) return
  }
}

/** @typedef {{ id: string, group: string, label: string, server: string, pub: string, sub: string, scenario: string, extra?: string[] }} Measurement */

/** @param {Record<string, import('./lib/servers.mjs').Server | undefined>} servers @param {string} server @param {string} door */
function urlOf (servers, server, door) {
  const s = servers[server]
  if (!s) return undefined
  const url = s.urls[door]
  if (!url) return undefined
  // Idle bench clients must not make the hub broadcast presence to everyone.
  return door === 'ws' && server === 'gateway' ? `${url}?presence=0` : url
}

/** The throughput measurements, in the order one repetition runs them. */
function throughputPlan () {
  /** @type {Measurement[]} */
  const plan = []
  const fan = (/** @type {string} */ server, /** @type {string} */ door, /** @type {string} */ label) =>
    plan.push({ id: `fanout.${server}.${door}`, group: 'fanout', label, server, pub: door, sub: door, scenario: 'fanout' })
  if (opts.wants('fanout')) {
    fan('aedes', 'mqtt', 'Aedes standalone, MQTT/TCP')
    fan('gateway', 'mqtt', 'gateway, MQTT/TCP')
    fan('gateway', 'mqtt-ws', 'gateway, MQTT/WS')
    if (!opts.quick) fan('aedes', 'mqtt-ws', 'Aedes standalone, MQTT/WS (createWebSocketStream)')
    fan('gateway', 'ws', 'gateway, /ws hub')
    fan('wsb', 'ws', 'raw ws broadcast server')
    if (!opts.quick) fan('wsb', 'ws-corked', 'raw ws broadcast server, corked per tick like the hub')
    if (!opts.quick) fan('mosquitto', 'mqtt', 'Mosquitto, MQTT/TCP')
    fan('mosquitto', 'mqtt-ws', 'Mosquitto, MQTT/WS')
  }
  if (opts.wants('cross')) {
    plan.push({ id: 'cross.gateway.mqtt>ws', group: 'cross', label: 'gateway, MQTT/TCP -> 100 /ws', server: 'gateway', pub: 'mqtt', sub: 'ws', scenario: 'fanout' })
    plan.push({ id: 'cross.gateway.ws>mqtt', group: 'cross', label: 'gateway, /ws -> 100 MQTT/TCP', server: 'gateway', pub: 'ws', sub: 'mqtt', scenario: 'fanout' })
  }
  if (opts.wants('fanin')) {
    const qs = opts.quick ? [0] : [0, 1]
    for (const q of qs) {
      const fin = (/** @type {string} */ server, /** @type {string} */ door, /** @type {string} */ label) =>
        plan.push({ id: `fanin.q${q}.${server}.${door}`, group: 'fanin', label: `${label}, QoS ${q}`, server, pub: door, sub: door, scenario: 'fanin', extra: ['--qos', String(q)] })
      if (!opts.quick) fin('aedes', 'mqtt', 'Aedes standalone, MQTT/TCP')
      fin('gateway', 'mqtt', 'gateway, MQTT/TCP')
      // Issue 15: what the on-disk store costs a QoS 1 fan-in, against the --memory row above.
      if (!opts.quick && q === 1) fin('gatewayDisk', 'mqtt', 'gateway on disk (--data-dir), MQTT/TCP')
      if (!opts.quick) fin('gateway', 'ws', 'gateway, /ws hub')
      if (!opts.quick) fin('mosquitto', 'mqtt', 'Mosquitto, MQTT/TCP')
    }
  }
  return plan
}

/** @param {Record<string, any>[]} runs */
function summarise (runs) {
  const ok = runs.filter((r) => !r.error)
  const pick = (/** @type {string} */ k) => median(ok.map((r) => r[k]))
  return {
    msgPerSec: pick('msgPerSec'),
    p50: pick('p50'),
    p99: pick('p99'),
    max: pick('max'),
    serverCpu: pick('serverCpu'),
    loadgenCpu: pick('loadgenCpu'),
    sendLagP99: pick('sendLagP99'),
    // Deliveries per second of server CPU: steadier than msg/s when other work shares the machine.
    perCpuSec: median(ok.map((r) => r.perCpuSec)),
    lost: ok.reduce((a, r) => a + (r.lost ?? 0), 0),
    stalled: ok.some((r) => r.stalled),
    errors: runs.filter((r) => r.error).map((r) => r.error)
  }
}

function machine () {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? '?',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    distro: existsSync('/etc/os-release') ? (/PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '') : '',
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    pinning: pin.note
  }
}

function fdLimit () {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' })
  const n = Number(r.stdout.trim())
  return Number.isFinite(n) && n > 0 ? n : 1024
}

/**
 * Idle connections: a fresh gateway, `perDoor` MQTT/TCP clients then `perDoor` /ws
 * clients, each held by its own load generator; RSS read before, between and after.
 * @param {number} perDoor
 */
async function connectionsRun (perDoor) {
  const gw = await startGateway(ROOT, pin.server)
  try {
    await sleep(1000)
    const rss0 = rssOf(gw.pid)
    /** @type {Record<string, any>} */
    const out = { perDoor, rssBefore: rss0 }
    const holders = []
    for (const door of ['mqtt', 'ws']) {
      const url = /** @type {string} */ (urlOf({ gateway: gw }, 'gateway', door))
      const cmd = pinned(pin.loadgen, process.execPath, [LOADGEN, 'connect', '--url', url, '--count', String(perDoor), '--hold', '120', '--max-seconds', '200'])
      const child = spawn(cmd.cmd, cmd.args, { stdio: ['pipe', 'pipe', 'pipe'] })
      child.stderr.resume()
      holders.push(child)
      const ready = await new Promise((resolve) => {
        const rl = createInterface({ input: child.stdout })
        const timer = setTimeout(() => resolve({ error: 'no result within 150 s' }), 150_000)
        rl.on('line', (line) => {
          try { const j = JSON.parse(line); if (j.event === 'ready' || j.error) { clearTimeout(timer); resolve(j) } } catch {}
        })
        child.once('exit', () => { clearTimeout(timer); resolve({ error: 'load generator exited' }) })
      })
      await sleep(1500) // let presence publishes and buffers settle
      out[door] = { ...ready, rssAfter: rssOf(gw.pid) }
    }
    const rss1 = out.ws.rssAfter
    const rssM = out.mqtt.rssAfter
    if (rss0 && rssM && rss1) {
      out.mqtt.bytesPerConn = Math.round((rssM - rss0) / Math.max(1, out.mqtt.connected))
      out.ws.bytesPerConn = Math.round((rss1 - rssM) / Math.max(1, out.ws.connected))
      out.rssTotal = rss1
      // The split by door depends on the order (heap the MQTT phase grew serves the /ws
      // phase); the average over both is the figure that extrapolates.
      out.bytesPerConn = Math.round((rss1 - rss0) / Math.max(1, out.mqtt.connected + out.ws.connected))
      // The process may not hold 2 x 10,000 sockets under this machine's fd limit: the
      // figure for 20,000 is extrapolated from the measured bytes per connection.
      out.rssAt20k = Math.round(rss0 + 20_000 * out.bytesPerConn)
    }
    for (const c of holders) c.stdin?.end('close\n')
    await Promise.all(holders.map((c) => new Promise((resolve) => { if (c.exitCode !== null) resolve(undefined); else c.once('exit', resolve) })))
    return out
  } finally {
    await gw.stop()
  }
}

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Writes the docs again from a results file (after editing bench/NOTES.md). @param {string} file */
function renderOnly (file) {
  const results = JSON.parse(readFileSync(file, 'utf8'))
  results.targets = buildTargets(results)
  process.stdout.write(renderTable(results) + '\n')
  writeDocs(results)
}

/** @param {any} results */
function writeDocs (results) {
  mkdirSync(join(ROOT, 'docs'), { recursive: true })
  const svg = renderSvg(results)
  writeFileSync(join(ROOT, 'docs/bench-latest.json'), JSON.stringify(results, null, 2) + '\n')
  if (svg) writeFileSync(join(ROOT, 'docs/bench-latency.svg'), svg)
  const notesPath = join(ROOT, 'bench/NOTES.md')
  writeFileSync(join(ROOT, 'docs/BENCH.md'), renderMarkdown(results, existsSync(notesPath) ? readFileSync(notesPath, 'utf8') : ''))
  // The README's performance section is the same table, between its two markers.
  const readmePath = join(ROOT, 'README.md')
  const readme = readFileSync(readmePath, 'utf8')
  const begin = readme.indexOf('<!-- bench:begin -->')
  const end = readme.indexOf('<!-- bench:end -->')
  if (begin >= 0 && end > begin) {
    writeFileSync(readmePath, readme.slice(0, begin) + '<!-- bench:begin -->\n' + renderReadmeSection(results) + readme.slice(end))
    log('wrote docs/BENCH.md, docs/bench-latest.json, docs/bench-latency.svg and the README performance section')
  } else {
    log('wrote docs/BENCH.md, docs/bench-latest.json, docs/bench-latency.svg (README has no bench markers)')
  }
}

async function main () {
  const rerender = process.argv.indexOf('--render')
  if (rerender >= 0) { renderOnly(process.argv[rerender + 1] ?? join(ROOT, 'bench/results/latest.json')); return }
  const startedAt = new Date()
  log(`${opts.quick ? 'quick' : 'full'} run: ${opts.reps} repetition(s) of ${opts.duration} s; ${pin.note}`)
  /** @type {Record<string, import('./lib/servers.mjs').Server | undefined>} */
  const servers = {}
  /** @type {string | undefined} */
  let mosquittoNote
  const stopAll = async () => { await Promise.allSettled(Object.values(servers).map((s) => s?.stop())) }
  process.on('SIGINT', () => { stopAll().finally(() => process.exit(130)) })
  try {
    const diskDir = opts.wants('fanin') && !opts.quick ? mkdtempSync(join(os.tmpdir(), 'fusion-bench-disk-')) : undefined
    if (diskDir) process.on('exit', () => rmSync(diskDir, { recursive: true, force: true }))
    const [gateway, aedes, wsb, mosq, gatewayDisk] = await Promise.all([
      startGateway(ROOT, pin.server),
      startAedes(ROOT, pin.server),
      startWsBroadcast(ROOT, pin.server),
      opts.mosquitto ? startMosquitto(pin.server) : Promise.resolve(/** @type {{ server?: import('./lib/servers.mjs').Server, skipped?: string }} */ ({ skipped: 'disabled with --no-mosquitto' })),
      diskDir ? startGateway(ROOT, pin.server, ['--data-dir', diskDir, ...GATEWAY_BENCH_FLAGS], 'gateway on disk') : Promise.resolve(undefined)
    ])
    Object.assign(servers, { gateway, aedes, wsb, mosquitto: mosq.server, gatewayDisk })
    mosquittoNote = mosq.skipped ?? mosq.server?.name
    if (mosq.skipped) log(`Mosquitto skipped: ${mosq.skipped}`)

    /** @type {Record<string, { label: string, group: string, runs: Record<string, any>[], median?: any }>} */
    const measurements = {}
    const match = process.argv.includes('--match') ? String(process.argv[process.argv.indexOf('--match') + 1]).split(',') : undefined
    const plan = throughputPlan().filter((m) => servers[m.server] && (!match || match.some((x) => m.id.includes(x))))
    const common = ['--warmup', String(opts.warmup), '--duration', String(opts.duration)]
    const minorReps = Math.min(3, opts.reps)
    for (let rep = 1; rep <= opts.reps; rep++) {
      // Every other repetition runs the plan backwards, so no server always comes right
      // after the same other one (what runs just before still costs a little).
      for (const m of rep % 2 ? plan : [...plan].reverse()) {
        if (m.group === 'fanin' && rep > minorReps) continue
        const pub = urlOf(servers, m.server, m.pub)
        const sub = urlOf(servers, m.server, m.sub)
        if (!pub || !sub) continue
        await settle(Object.values(servers))
        const r = await loadgen([m.scenario, '--pub', pub, '--sub', sub, ...common, ...(m.extra ?? [])], servers[m.server]?.pid, opts.duration + 60)
        if (r.serverCpu > 0 && r.msgPerSec > 0) r.perCpuSec = Math.round(r.msgPerSec / r.serverCpu)
        const entry = (measurements[m.id] ??= { label: m.label, group: m.group, runs: [] })
        entry.runs.push(r)
        log(`[${rep}/${opts.reps}] ${m.id}: ${r.error ? `ERROR ${r.error}` : `${r.msgPerSec} msg/s, p50 ${r.p50} ms, p99 ${r.p99} ms, server cpu ${r.serverCpu ?? '?'}`}`)
      }
    }

    // Latency at the fixed rate of the issue: 100 msg/s into 100 subscribers per door.
    /** @type {Array<{ server: string, door: string, label: string }>} */
    const latencyDoors = [
      { server: 'gateway', door: 'mqtt', label: 'gateway, MQTT/TCP' },
      { server: 'gateway', door: 'mqtt-ws', label: 'gateway, MQTT/WS' },
      { server: 'gateway', door: 'ws', label: 'gateway, /ws hub' }
    ]
    if (opts.wants('latency')) {
      for (let rep = 1; rep <= minorReps; rep++) {
        for (const d of latencyDoors) {
          const url = /** @type {string} */ (urlOf(servers, d.server, d.door))
          await settle(Object.values(servers))
          const r = await loadgen(['rate', '--pub', url, '--sub', url, '--rate', '100', '--warmup', String(opts.quick ? 0.2 : 0.5), '--duration', String(opts.quick ? 1 : opts.duration)], servers[d.server]?.pid, opts.duration + 60)
          const entry = (measurements[`latency.${d.server}.${d.door}`] ??= { label: d.label, group: 'latency', runs: [] })
          entry.runs.push(r)
          log(`[${rep}/${minorReps}] latency ${d.server}.${d.door}: ${r.error ? `ERROR ${r.error}` : `p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms, delivered ${r.delivered}`}`)
        }
      }
    }
    for (const m of Object.values(measurements)) {
      const s = summarise(m.runs)
      if (m.group === 'latency') {
        const ok = m.runs.filter((r) => !r.error)
        s.msgPerSec = median(ok.map((r) => r.achievedPerSec))
        Object.assign(s, { delivered: median(ok.map((r) => r.delivered)) })
      }
      m.median = s
    }

    // Latency versus load, for the plot: open loop at rising rates until a door saturates.
    /** @type {Array<{ series: string, server: string, door: string, deliveriesPerSec: number, p50: number, p99: number, max: number, delivered: number }>} */
    const sweep = []
    if (opts.wants('sweep') && !opts.quick) {
      const series = [
        ...latencyDoors,
        { server: 'aedes', door: 'mqtt', label: 'Aedes standalone, MQTT/TCP' },
        { server: 'wsb', door: 'ws', label: 'raw ws broadcast' },
        { server: 'mosquitto', door: 'mqtt-ws', label: 'Mosquitto, MQTT/WS' }
      ].filter((s) => servers[s.server])
      for (const s of series) {
        for (const rate of [25, 100, 400, 1000, 2000, 4000]) {
          const url = /** @type {string} */ (urlOf(servers, s.server, s.door))
          await settle(Object.values(servers))
          const r = await loadgen(['rate', '--pub', url, '--sub', url, '--rate', String(rate), '--warmup', '0.5', '--duration', '3'], servers[s.server]?.pid, 60)
          if (r.error) { log(`sweep ${s.label} @${rate}: ERROR ${r.error}`); break }
          sweep.push({ series: s.label, server: s.server, door: s.door, deliveriesPerSec: r.deliveriesPerSec, p50: r.p50, p99: r.p99, max: r.max, delivered: r.delivered })
          log(`sweep ${s.label} @${r.deliveriesPerSec}/s: p50 ${r.p50} ms, p99 ${r.p99} ms, delivered ${r.delivered}`)
          // Past saturation the queue only grows: stop this series.
          if (r.p99 > 1000 || r.delivered < 0.99) break
        }
      }
    }

    // The throughput servers are done; connections get a fresh gateway of their own.
    await stopAll()
    /** @type {Record<string, any> | undefined} */
    let connections
    if (opts.wants('connections')) {
      const limit = fdLimit()
      const perDoor = Math.min(opts.conns, Math.floor((limit - 100) / 2))
      if (perDoor < opts.conns) log(`file descriptor limit ${limit}: ${perDoor} connections per door instead of ${opts.conns}`)
      const runs = []
      for (let rep = 1; rep <= minorReps; rep++) {
        const r = await connectionsRun(perDoor)
        runs.push(r)
        log(`[${rep}/${minorReps}] connections: ${r.mqtt?.connected}/${perDoor} MQTT in ${r.mqtt?.totalMs} ms, ${r.ws?.connected}/${perDoor} /ws in ${r.ws?.totalMs} ms; RSS ${mb(r.rssBefore)} -> ${mb(r.rssTotal)} MB (${r.mqtt?.bytesPerConn} B/MQTT, ${r.ws?.bytesPerConn} B/ws)`)
      }
      connections = {
        fdLimit: limit,
        perDoor,
        runs,
        median: {
          rssBefore: median(runs.map((r) => r.rssBefore)),
          rssTotal: median(runs.map((r) => r.rssTotal)),
          rssAt20k: median(runs.map((r) => r.rssAt20k)),
          bytesPerConn: median(runs.map((r) => r.bytesPerConn)),
          mqttBytesPerConn: median(runs.map((r) => r.mqtt?.bytesPerConn)),
          wsBytesPerConn: median(runs.map((r) => r.ws?.bytesPerConn)),
          mqttConnectMs: median(runs.map((r) => r.mqtt?.totalMs)),
          wsConnectMs: median(runs.map((r) => r.ws?.totalMs)),
          mqttConnPerSec: median(runs.map((r) => r.mqtt?.connPerSec)),
          wsConnPerSec: median(runs.map((r) => r.ws?.connPerSec)),
          mqttConnected: median(runs.map((r) => r.mqtt?.connected)),
          wsConnected: median(runs.map((r) => r.ws?.connected))
        }
      }
    }

    // Issue 4: what the on-disk log and the held PUBACK cost, each case on a fresh gateway.
    /** @type {Record<string, any> | undefined} */
    let durability
    if (opts.wants('durability')) durability = await measureDurability({ seconds: opts.quick ? 1 : 4, rounds: minorReps, log })

    // Issue 14: N browsers joining one room with presence on, beside presence off and raw ws.
    /** @type {Record<string, any> | undefined} */
    let joinResults
    if (opts.wants('join')) {
      joinResults = await measureJoin({ sizes: opts.quick ? [300] : [1000, 5000, 10_000, 20_000], reps: minorReps, mixed: !opts.quick, log })
      process.stdout.write(renderJoin(/** @type {any} */ (joinResults)) + '\n')
    }

    // Issue 14: a reconnect storm of MQTT devices with persistent sessions, on disk.
    /** @type {Record<string, any> | undefined} */
    let storm
    if (opts.wants('storm')) {
      storm = await measureStorm({ devices: opts.quick ? 500 : 10_000, reps: minorReps, log })
      process.stdout.write(renderStorm(storm) + '\n')
    }

    const results = {
      date: startedAt.toISOString(),
      durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      command: opts.quick ? 'npm run bench -- --quick' : 'npm run bench',
      machine: machine(),
      options: { quick: opts.quick, reps: opts.reps, minorReps, duration: opts.duration, warmup: opts.warmup, subscribers: 100, publishers: 100, payloadBytes: 64, fanoutWindow: 64, faninWindow: 200 },
      servers: { mosquitto: mosquittoNote ?? 'not started' },
      measurements,
      sweep,
      connections,
      durability,
      join: joinResults,
      storm,
      targets: /** @type {any[]} */ ([])
    }
    results.targets = buildTargets(results)
    const table = renderTable(results)
    process.stdout.write(table + '\n')

    mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
    writeFileSync(join(ROOT, 'bench/results/latest.json'), JSON.stringify(results, null, 2) + '\n')
    const svg = renderSvg(results)
    if (svg) writeFileSync(join(ROOT, 'bench/results/latency.svg'), svg)
    if (opts.docs) writeDocs(results)
    log(`wrote bench/results/latest.json in ${results.durationSeconds} s`)
  } finally {
    await stopAll()
  }
}

/** @param {number | undefined} b */
function mb (b) { return b === undefined ? '?' : Math.round(b / 2 ** 20) }

main().catch((err) => {
  process.stderr.write(`bench: failed: ${err?.stack ?? err}\n`)
  process.exit(1)
})
