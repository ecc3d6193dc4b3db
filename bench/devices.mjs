#!/usr/bin/env node
// @ts-check
// How many simulated devices one gateway holds: for each device count, a fresh built
// gateway (node dist/cli/main.js --memory), then examples/device-sim.mjs --report with
// a /ws hub client measuring delivery latency (from --settle seconds after the last
// device connected, for --steady seconds). The gateway's memory comes from
// /proc/<pid>/status (VmRSS) before the devices connect and once they all are, its CPU
// from /proc/<pid>/stat over the steady phase.
//
//   npm run build && node bench/devices.mjs --counts 1000,5000,10000 --interval 5000 --steady 40
//
// Loopback only; every run is bounded (--steady seconds once connected, --max-seconds
// in all), and the gateway is stopped before the next count.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startGateway as startGatewayServer } from './lib/servers.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const SIM = join(ROOT, 'examples', 'device-sim.mjs')
/** Linux clock ticks per second for /proc/<pid>/stat (sysconf(_SC_CLK_TCK); 100 on every Linux we run on). */
const CLK_TCK = 100
/** The devices outlive the measuring client by this much, so it never sees them leave. */
const PROBE_MARGIN_S = 5

const { values: v } = parseArgs({
  options: {
    counts: { type: 'string', default: '1000,5000,10000' },
    interval: { type: 'string', default: '5000' },
    steady: { type: 'string', default: '40' },
    settle: { type: 'string', default: '5' },
    'max-seconds': { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '200' },
    qos: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false }
  }
})
const counts = (v.counts ?? '').split(',').map(Number)
if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 50_000)) throw new Error('--counts: integers from 1 to 50000')
const steady = Number(v.steady)
const settle = Number(v.settle)
if (!(settle >= 0 && settle <= 60)) throw new Error('--settle: 0 to 60 seconds')
const maxSeconds = Number(v['max-seconds'])
if (!(steady >= 1 && steady <= 600)) throw new Error('--steady: 1 to 600 seconds')
if (!(maxSeconds > steady && maxSeconds <= 1800)) throw new Error('--max-seconds: more than --steady, at most 1800')

/** @param {number} pid */
function rssKiB (pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : NaN
}

/** CPU seconds (user + system) the process has used. @param {number} pid */
function cpuSeconds (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

/** The built gateway on loopback, ports 0, in memory. */
function startGateway () {
  // Every simulated device comes from 127.0.0.1: the per-address caps and connect rate
  // that protect a real gateway from one host would measure themselves, not capacity.
  const limits = ['--max-connections', '200000', '--max-connections-per-ip', '200000', '--connect-rate', '100000']
  return startGatewayServer(ROOT, undefined, ['--memory', ...limits])
}

/**
 * Runs examples/device-sim.mjs; resolves with its JSON report.
 * @param {string[]} args
 * @param {(stderrSoFar: string) => void} [onProgress]
 */
function runSim (args, onProgress) {
  const proc = spawn(process.execPath, [SIM, ...args, '--report'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d) => { out += d })
  proc.stderr.on('data', (d) => { err += d; onProgress?.(err) })
  const report = new Promise((resolve, reject) => proc.once('exit', (code) => {
    if (code !== 0) return reject(new Error(`device-sim ${args.join(' ')} exited ${code}: ${err}`))
    try { resolve(JSON.parse(out)) } catch (e) { reject(e) }
  }))
  return { proc, report }
}

/**
 * One device count against a fresh gateway. The devices run in one process; once they
 * are all connected, a second process (device-sim --count 0 --hub) joins the /ws hub
 * and measures delivery latency for --steady seconds, so that the devices' own work
 * (and their heap's garbage collection) does not delay the measuring client's clock.
 * @param {number} n
 */
async function runOne (n) {
  const gw = await startGateway()
  const pid = gw.pid
  try {
    const rssBefore = rssKiB(pid)
    const cpuStart = cpuSeconds(pid)
    const tStart = Date.now()
    /** @type {{ rssConnected?: number, rssEnd?: number, rssMax: number, cpuConnected?: number, tConnected?: number, cpu0?: number, cpu1?: number, t0?: number, t1?: number }} */
    const m = { rssMax: rssBefore }
    const sampler = setInterval(() => { try { m.rssMax = Math.max(m.rssMax, rssKiB(pid)) } catch {} }, 1000)
    /** @type {Promise<any> | undefined} */
    let probeReport
    /** @type {() => void} */
    let probeStarted = () => {}
    const started = new Promise((resolve) => { probeStarted = () => resolve(undefined) })
    const devices = runSim(['--url', gw.urls.mqtt, '--count', String(n), '--prefix', 'bench', '--interval', String(v.interval), '--qos', String(v.qos),
      '--keepalive', '60', '--concurrency', String(v.concurrency), '--steady', String(settle + steady + PROBE_MARGIN_S), '--duration', String(maxSeconds)], (err) => {
      if (m.tConnected !== undefined || !err.includes('# connected')) return
      m.rssConnected = rssKiB(pid)
      m.cpuConnected = cpuSeconds(pid)
      m.tConnected = Date.now()
      // The last connections' subscriptions are still being handled when the last
      // CONNACK is out: measure the steady state from `settle` seconds later.
      setTimeout(() => {
        m.cpu0 = cpuSeconds(pid)
        m.t0 = Date.now()
        const probe = runSim(['--hub', gw.urls.ws, '--count', '0', '--prefix', 'bench', '--steady', String(steady), '--duration', String(steady + 60)])
        probeReport = probe.report.then((r) => { m.rssEnd = rssKiB(pid); m.cpu1 = cpuSeconds(pid); m.t1 = Date.now(); return r })
        probeStarted()
      }, settle * 1000)
    })
    // The devices stop by themselves PROBE_MARGIN_S after the probe; --duration bounds the rest.
    const [report, probe] = await Promise.all([devices.report, Promise.race([started, devices.report]).then(() => probeReport)])
    clearInterval(sampler)
    if (!probe) throw new Error(`the devices never all connected: ${JSON.stringify(report)}`)
    const rssPeak = Math.max(m.rssMax, m.rssEnd ?? 0)
    const steadyS = m.t0 && m.t1 ? (m.t1 - m.t0) / 1000 : NaN
    return {
      devices: n,
      connected: report.connected,
      connectAllS: report.connectAllMs === null ? null : report.connectAllMs / 1000,
      connectP99Ms: report.connectMs?.p99 ?? null,
      rssBeforeMiB: +(rssBefore / 1024).toFixed(1),
      rssConnectedMiB: m.rssConnected === undefined ? null : +(m.rssConnected / 1024).toFixed(1),
      rssPeakMiB: +(rssPeak / 1024).toFixed(1),
      kibPerDevice: m.rssEnd === undefined ? null : +((m.rssEnd - rssBefore) / n).toFixed(1),
      msgsPerS: +(probe.hub.received / probe.steadySeconds).toFixed(0),
      published: report.published,
      acked: report.acked,
      reconnects: report.reconnects,
      received: probe.hub.received,
      latencyMs: probe.hub.latencyMs,
      deviceToGatewayMs: probe.hub.deviceToGatewayMs,
      gatewayToHubMs: probe.hub.gatewayToHubMs,
      hubClosed: probe.hub.closeCode,
      gatewayCpuConnectPct: m.cpuConnected !== undefined && m.tConnected ? +((m.cpuConnected - cpuStart) / ((m.tConnected - tStart) / 1000) * 100).toFixed(0) : null,
      gatewayCpuPct: m.cpu0 !== undefined && m.cpu1 !== undefined ? +((m.cpu1 - m.cpu0) / steadyS * 100).toFixed(0) : null,
      simEventLoopUtilization: report.simEventLoopUtilization,
      probeEventLoopUtilization: probe.simEventLoopUtilization
    }
  } finally {
    await gw.stop()
  }
}

const results = []
for (const n of counts) {
  process.stderr.write(`devices=${n} ... `)
  const r = await runOne(n)
  process.stderr.write(`connected ${r.connected} in ${r.connectAllS} s, p99 ${r.latencyMs?.p99} ms\n`)
  results.push(r)
}

if (v.json) {
  console.log(JSON.stringify({ interval: Number(v.interval), steady, qos: Number(v.qos), results }, null, 2))
} else {
  /** @type {string[][]} */
  const rows = [['devices', 'connected', 'connect all', 'RSS before', 'RSS connected', 'RSS peak', 'KiB/device', 'msg/s', 'latency p50/p99/max', 'p99 dev->gw/gw->hub', 'gw CPU connect/steady', 'sim ELU']]
  for (const r of results) {
    rows.push([String(r.devices), String(r.connected), `${r.connectAllS} s`, `${r.rssBeforeMiB} MiB`, `${r.rssConnectedMiB} MiB`, `${r.rssPeakMiB} MiB`,
      String(r.kibPerDevice), String(r.msgsPerS), r.latencyMs ? `${r.latencyMs.p50}/${r.latencyMs.p99}/${r.latencyMs.max} ms` : '-', `${r.deviceToGatewayMs?.p99}/${r.gatewayToHubMs?.p99} ms`, `${r.gatewayCpuConnectPct}%/${r.gatewayCpuPct}%`, String(r.simEventLoopUtilization)])
  }
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)))
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '))
}
