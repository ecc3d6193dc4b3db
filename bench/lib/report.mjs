// @ts-check
/**
 * Turns one bench run's results into the targets of issues 7 and 4, the printed table, the
 * latency-versus-load SVG (drawn here, no library) and docs/BENCH.md.
 */

import { median } from './samples.mjs'

/**
 * @typedef {{ name: string, kind: 'ratio' | 'max', value: number | null, target: number, met: boolean | null,
 *   detail: string, cpuRatio?: number | null }} Target
 */

/** @param {number | null | undefined} x @param {number} [d] */
const fmt = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d))
/** @param {number | null | undefined} x */
const int = (x) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : Math.round(x).toLocaleString('en-US'))
/** @param {number | null | undefined} b */
const mb = (b) => (b === null || b === undefined ? 'n/a' : `${Math.round(b / 2 ** 20)} MB`)

/** @param {any} results @returns {Target[]} */
export function buildTargets (results) {
  const m = results.measurements
  const med = (/** @type {string} */ id) => m[id]?.median
  /** @type {Target[]} */
  const out = []
  // Repetition r of every measurement ran within minutes of each other, servers taking
  // turns: the ratio of each repetition's pair cancels most of the machine's drift, and
  // the median of those ratios is the figure. With one run it is the plain ratio.
  /** @param {string} num @param {string} den @param {string} key */
  const pairedRatio = (num, den, key) => {
    const ra = m[num]?.runs ?? []
    const rb = m[den]?.runs ?? []
    /** @type {number[]} */
    const ratios = []
    for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
      const x = ra[i]?.[key]
      const y = rb[i]?.[key]
      if (typeof x === 'number' && typeof y === 'number' && x > 0 && y > 0) ratios.push(x / y)
    }
    return median(ratios)
  }
  /** A target of null is a figure shown for tracking, with no verdict. */
  const ratio = (/** @type {string} */ name, /** @type {string} */ num, /** @type {string} */ den, /** @type {number | null} */ target) => {
    const a = med(num)
    const b = med(den)
    const value = pairedRatio(num, den, 'msgPerSec')
    const cpuRatio = pairedRatio(num, den, 'perCpuSec')
    out.push({
      name,
      kind: 'ratio',
      value,
      target: target ?? NaN,
      met: value === null || target === null ? null : value >= target,
      detail: a && b ? `${int(a.msgPerSec)} / ${int(b.msgPerSec)} msg/s` : `not measured (${!a ? num : den})`,
      cpuRatio
    })
  }
  ratio('fan-out: gateway MQTT/TCP / standalone Aedes MQTT/TCP', 'fanout.gateway.mqtt', 'fanout.aedes.mqtt', 0.9)
  ratio('fan-out: gateway MQTT/WS / gateway MQTT/TCP', 'fanout.gateway.mqtt-ws', 'fanout.gateway.mqtt', 0.9)
  ratio('fan-out: /ws hub / raw ws broadcast', 'fanout.gateway.ws', 'fanout.wsb.ws', 0.8)
  ratio('fan-out: /ws hub / Mosquitto MQTT/WS', 'fanout.gateway.ws', 'fanout.mosquitto.mqtt-ws', 1.0)
  // Issue 15: the MQTT engine against Mosquitto on fan-out, against Aedes on fan-in.
  ratio('fan-out: gateway MQTT/TCP / Mosquitto MQTT/TCP', 'fanout.gateway.mqtt', 'fanout.mosquitto.mqtt', 1.0)
  ratio('fan-out: gateway MQTT/WS / Mosquitto MQTT/WS', 'fanout.gateway.mqtt-ws', 'fanout.mosquitto.mqtt-ws', 1.0)
  ratio('fan-in QoS 0: gateway MQTT/TCP / standalone Aedes', 'fanin.q0.gateway.mqtt', 'fanin.q0.aedes.mqtt', 0.9)
  ratio('fan-in QoS 1: gateway MQTT/TCP / standalone Aedes', 'fanin.q1.gateway.mqtt', 'fanin.q1.aedes.mqtt', 0.9)
  ratio('fan-in QoS 1: gateway on disk / --memory', 'fanin.q1.gatewayDisk.mqtt', 'fanin.q1.gateway.mqtt', 0.8)
  ratio('fan-in QoS 0: gateway MQTT/TCP / Mosquitto (no target)', 'fanin.q0.gateway.mqtt', 'fanin.q0.mosquitto.mqtt', null)
  ratio('fan-in QoS 1: gateway MQTT/TCP / Mosquitto (no target)', 'fanin.q1.gateway.mqtt', 'fanin.q1.mosquitto.mqtt', null)
  ratio('cross-door: MQTT/TCP -> /ws / same-door /ws -> /ws', 'cross.gateway.mqtt>ws', 'fanout.gateway.ws', 0.8)
  ratio('cross-door: /ws -> MQTT/TCP / same-door MQTT/TCP -> MQTT/TCP', 'cross.gateway.ws>mqtt', 'fanout.gateway.mqtt', 0.8)
  for (const [door, label] of [['mqtt', 'MQTT/TCP'], ['mqtt-ws', 'MQTT/WS'], ['ws', '/ws hub']]) {
    const a = med(`latency.gateway.${door}`)
    const value = a?.p99 ?? null
    const complete = a?.delivered === undefined || a.delivered >= 0.999
    out.push({
      name: `latency: p99 at 10,000 deliveries/s, ${label} (ms)`,
      kind: 'max',
      value,
      target: 10,
      met: value === null ? null : value < 10 && complete,
      detail: a ? `p50 ${fmt(a.p50)} ms, max ${fmt(a.max)} ms, delivered ${fmt((a.delivered ?? 0) * 100, 1)}%` : 'not measured'
    })
  }
  // Issue 4: the durable path may cost at most 30 % of the throughput it replaces.
  const d = results.durability
  const durable = (/** @type {string} */ name, /** @type {number | null | undefined} */ value, /** @type {string} */ num, /** @type {string} */ den) => out.push({
    name,
    kind: 'ratio',
    value: value ?? null,
    target: 0.7,
    met: value === null || value === undefined ? null : value >= 0.7,
    detail: d ? `${int(d.medians[num])} / ${int(d.medians[den])} msg/s` : 'not measured'
  })
  durable('durability: chat acked over /ws, on-disk log / --memory', d?.chatRatio, 'chatDisk', 'chatMemory')
  durable('durability: MQTT QoS 1, held PUBACK / stock Aedes order', d?.qosRatio, 'qos1Held', 'qos1Stock')
  // Issue 14: joins with presence on (bench/join.mjs), against a raw ws server in the same run.
  const j = results.join?.targets
  if (j) {
    const max = (/** @type {string} */ name, /** @type {number | undefined} */ value, /** @type {number} */ target, /** @type {string} */ detail) =>
      out.push({ name, kind: 'max', value: value ?? null, target, met: value === undefined || value === null ? null : value <= target, detail })
    max('join: 10k /ws, presence on / raw ws (time)', j.join10kVsRaw, 3, `gateway ${int(j.join10kMs)} ms`)
    max('join: 10k /ws, presence on (s)', j.join10kMs === undefined ? undefined : j.join10kMs / 1000, 10, 'time until every socket has its history frame')
    max(`join: ${int(j.size20k ?? 20_000)} / 10k, presence on (time)`, j.join20kVs10k, 2, `${int(j.size20k ?? 0)} sockets (fd limit ${int(j.fdLimit)})`)
    max('join: bytes per /ws socket, presence on / raw ws', j.bytesPerSocketVsRaw, 2, 'RSS growth per socket at 10k')
    // Results from before 2026-12-03 10:30 read the RSS right after the joins only.
    max('join: RSS, 10k /ws (presence on) + 10k MQTT idle (MB)', j.mixedRssAt2x10kMB, 250, j.mixedRssAt2x10kBurstMB === undefined
      ? 'read right after the joins (this run predates the settled reading); extrapolated from 2 x perDoor under the fd limit'
      : `settled (after a full collection, see bench/NOTES.md); ${j.mixedRssAt2x10kBurstMB} MB right after the joins; extrapolated from 2 x perDoor under the fd limit`)
    if (j.mqttSocketVsAedes !== undefined) {
      max('join: bytes per idle MQTT/TCP socket, gateway / standalone Aedes', j.mqttSocketVsAedes, 1, `settled: ${int(j.mqttSocketB ?? 0)} B vs ${int(j.mqttSocketAedesB ?? 0)} B; right after the connects ${j.mqttSocketVsAedesBurst ?? '?'}x`)
    }
  }
  // Issue 14: the reconnect storm (bench/storm.mjs), worst case over its runs.
  const st = results.storm
  if (st) {
    const m = st.medians ?? {}
    const cap = (/** @type {string} */ name, /** @type {number | undefined} */ value, /** @type {number} */ target, /** @type {string} */ detail) =>
      out.push({ name, kind: 'max', value: value ?? null, target, met: value === undefined || value === null ? null : value <= target, detail })
    cap(`storm: ${int(st.devices)} devices back and shown online (s)`, m.onlineMs === undefined ? undefined : m.onlineMs / 1000, 30, `every CONNACK in ${int(m.backMs)} ms, every queued command in ${int(m.commandsMs)} ms`)
    cap('storm: queued QoS 1 commands lost', st.commandsLost, 0, `${int(st.backFailed)} devices never came back`)
    const worst = Math.max(0, ...st.runs.filter((/** @type {any} */ r) => !r.error).map((/** @type {any} */ r) => r.health?.max ?? 0))
    cap('storm: slowest /api/health answer (ms)', st.runs.some((/** @type {any} */ r) => !r.error) ? worst : undefined, 250, 'polled every 100 ms from before the drop to the end')
  }
  const c = results.connections?.median
  if (c) {
    const measured = results.connections.perDoor * 2
    if (measured < 10_000) {
      // A few hundred connections move RSS by less than the heap's own growth steps.
      out.push({ name: 'connections: RSS with 10k /ws + 10k MQTT idle (MB)', kind: 'max', value: null, target: 400, met: null, detail: `${int(measured)} held = ${mb(c.rssTotal)}: too few to judge (full run holds 20k)` })
      return out
    }
    out.push({
      name: 'connections: RSS with 10k /ws + 10k MQTT idle (MB)',
      kind: 'max',
      value: c.rssAt20k ? c.rssAt20k / 2 ** 20 : null,
      target: 400,
      met: c.rssAt20k ? c.rssAt20k / 2 ** 20 < 400 : null,
      detail: measured >= 20_000
        ? `measured at 20,000: ${mb(c.rssTotal)}`
        : `${int(measured)} held (fd limit ${results.connections.fdLimit}) = ${mb(c.rssTotal)}; 20k extrapolated at ${int(c.bytesPerConn)} B per connection`
    })
  } else {
    out.push({ name: 'connections: RSS with 10k /ws + 10k MQTT idle (MB)', kind: 'max', value: null, target: 400, met: null, detail: 'not measured' })
  }
  return out
}

/** @param {Target} t */
function verdict (t) { return t.met === null ? 'n/a' : t.met ? 'MET' : 'NOT MET' }

/** @param {Target} t */
function targetText (t) { return !Number.isFinite(t.target) ? '-' : t.kind === 'ratio' ? `>= ${fmt(t.target)}` : t.target === 0 ? '= 0' : `<= ${t.target}` }

/** @param {string[][]} rows */
function mdTable (rows) {
  const [head, ...body] = rows
  return [`| ${(head ?? []).join(' | ')} |`, `| ${(head ?? []).map(() => '---').join(' | ')} |`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n')
}

/** @param {any} results */
export function targetsTable (results) {
  /** @type {Target[]} */
  const targets = results.targets
  return mdTable([
    ['target', 'measured (medians)', 'value', 'target', 'CPU-normalised', 'result'],
    ...targets.map((t) => [t.name, t.detail, fmt(t.value), targetText(t), t.cpuRatio === undefined ? '' : fmt(t.cpuRatio), verdict(t)])
  ])
}

/** @param {any} results */
export function detailsTable (results) {
  const rows = [['measurement', 'msg/s', 'p50 ms', 'p99 ms', 'max ms', 'server CPU', 'msg per CPU-s', 'loadgen CPU', 'runs', 'notes']]
  for (const [id, m] of Object.entries(results.measurements)) {
    const s = m.median
    const notes = []
    if (s.lost) notes.push(`${s.lost} lost`)
    if (s.stalled) notes.push('stalled')
    if (s.errors?.length) notes.push(`${s.errors.length} failed: ${s.errors[0]}`)
    if (s.delivered !== undefined && s.delivered !== null && s.delivered < 1) notes.push(`delivered ${fmt(s.delivered * 100, 1)}%`)
    if (s.sendLagP99 !== undefined && s.sendLagP99 !== null) notes.push(`generator send lag p99 ${fmt(s.sendLagP99)} ms`)
    rows.push([`${m.label} (${id})`, int(s.msgPerSec), fmt(s.p50), fmt(s.p99), fmt(s.max), fmt(s.serverCpu), int(s.perCpuSec), fmt(s.loadgenCpu), String(m.runs.length), notes.join('; ')])
  }
  return mdTable(rows)
}

/** @param {any} results */
function connectionsText (results) {
  const c = results.connections
  if (!c) return 'connections: not measured'
  const m = c.median
  return `connections (median of ${c.runs.length}): ${int(m.mqttConnected)} MQTT/TCP in ${int(m.mqttConnectMs)} ms (${int(m.mqttConnPerSec)}/s), ` +
    `${int(m.wsConnected)} /ws in ${int(m.wsConnectMs)} ms (${int(m.wsConnPerSec)}/s); RSS ${mb(m.rssBefore)} idle -> ${mb(m.rssTotal)}; ` +
    `${int(m.bytesPerConn)} B per connection on average (in the order measured, MQTT first: ${int(m.mqttBytesPerConn)} B per MQTT, then ${int(m.wsBytesPerConn)} B per /ws connection)`
}

/** The table printed at the end of a run. @param {any} results */
export function renderTable (results) {
  const met = results.targets.filter((/** @type {Target} */ t) => t.met === true).length
  const known = results.targets.filter((/** @type {Target} */ t) => t.met !== null).length
  return [
    '',
    `mqtt-fusion bench, ${results.date} (${results.command}; ${results.machine.cpus} cores, Node ${results.machine.node}; ${results.machine.pinning})`,
    '',
    targetsTable(results),
    '',
    detailsTable(results),
    '',
    connectionsText(results),
    '',
    `targets met: ${met} of ${known} measured (${results.targets.length} in all); medians of ${results.options.reps} run(s) of ${results.options.duration} s (${results.options.minorReps ?? results.options.reps} for fan-in, latency, connections); Mosquitto: ${results.servers.mosquitto}`,
    ...(results.options.quick ? ['quick run: one short run per measurement checks that everything works; its verdicts are not figures of record (docs/BENCH.md holds the last full run)'] : [])
  ].join('\n')
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2']

/** @param {string} s */
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/**
 * p99 (solid) and p50 (dotted) latency against offered deliveries per second, log-log.
 * @param {any} results
 * @returns {string | undefined}
 */
export function renderSvg (results) {
  /** @type {any[]} */
  let points = results.sweep ?? []
  if (points.length === 0) {
    // A quick run has no sweep: plot the fixed-rate points it has.
    points = Object.entries(results.measurements).filter(([id]) => id.startsWith('latency.')).map(([, m]) => ({
      series: m.label, deliveriesPerSec: 10_000, p50: m.median.p50, p99: m.median.p99
    }))
  }
  points = points.filter((p) => p.p99 > 0 && p.p50 > 0)
  if (points.length === 0) return undefined
  const W = 800
  const H = 460
  const L = 70
  const R = 250
  const T = 40
  const B = 60
  const xs = points.map((p) => p.deliveriesPerSec)
  const ys = points.flatMap((p) => [p.p50, p.p99])
  const x0 = Math.floor(Math.log10(Math.min(...xs)))
  const x1 = Math.ceil(Math.log10(Math.max(...xs) * 1.01))
  const y0 = Math.floor(Math.log10(Math.min(...ys, 1)))
  const y1 = Math.ceil(Math.log10(Math.max(...ys, 10) * 1.01))
  const px = (/** @type {number} */ v) => L + (Math.log10(v) - x0) / Math.max(1e-9, x1 - x0) * (W - L - R)
  const py = (/** @type {number} */ v) => H - B - (Math.log10(v) - y0) / Math.max(1e-9, y1 - y0) * (H - T - B)
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${L}" y="22" font-size="15" font-weight="bold">Latency versus load: 100 subscribers, 64-byte payloads, open loop</text>`
  ]
  for (let e = x0; e <= x1; e++) {
    const x = px(10 ** e)
    parts.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#ddd"/>`)
    parts.push(`<text x="${x}" y="${H - B + 16}" text-anchor="middle">${int(10 ** e)}</text>`)
  }
  for (let e = y0; e <= y1; e++) {
    const y = py(10 ** e)
    parts.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#ddd"/>`)
    parts.push(`<text x="${L - 6}" y="${y + 4}" text-anchor="end">${10 ** e >= 1 ? int(10 ** e) : (10 ** e).toString()}</text>`)
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">offered deliveries per second (publish rate x 100 subscribers)</text>`)
  parts.push(`<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">latency, ms (solid p99, dotted p50)</text>`)
  const yTarget = py(10)
  parts.push(`<line x1="${L}" y1="${yTarget}" x2="${W - R}" y2="${yTarget}" stroke="#000" stroke-dasharray="6 4"/>`)
  parts.push(`<text x="${W - R - 4}" y="${yTarget - 5}" text-anchor="end">p99 target 10 ms</text>`)
  const series = [...new Set(points.map((p) => p.series))]
  series.forEach((name, i) => {
    const color = COLORS[i % COLORS.length]
    const pts = points.filter((p) => p.series === name).sort((a, b) => a.deliveriesPerSec - b.deliveriesPerSec)
    for (const [key, dash] of [['p99', ''], ['p50', ' stroke-dasharray="2 3"']]) {
      const d = pts.map((p, j) => `${j ? 'L' : 'M'}${px(p.deliveriesPerSec).toFixed(1)},${py(p[key]).toFixed(1)}`).join(' ')
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`)
    }
    for (const p of pts) parts.push(`<circle cx="${px(p.deliveriesPerSec).toFixed(1)}" cy="${py(p.p99).toFixed(1)}" r="3" fill="${color}"/>`)
    const ly = T + 10 + i * 20
    parts.push(`<line x1="${W - R + 15}" y1="${ly}" x2="${W - R + 40}" y2="${ly}" stroke="${color}" stroke-width="2"/>`)
    parts.push(`<text x="${W - R + 46}" y="${ly + 4}">${esc(name)}</text>`)
  })
  parts.push(`<text x="${W - R + 15}" y="${T + 10 + series.length * 20 + 16}" fill="#555">${esc(results.date.slice(0, 10))}, ${results.machine.cpus} cores, Node ${esc(results.machine.node)}</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

/** docs/BENCH.md. @param {any} results @param {string} notes hand-written analysis kept in bench/NOTES.md */
export function renderMarkdown (results, notes) {
  const m = results.machine
  const met = results.targets.filter((/** @type {Target} */ t) => t.met === true).length
  const known = results.targets.filter((/** @type {Target} */ t) => t.met !== null).length
  return `# Benchmark: the gateway against the parts it is made of

<!-- Generated by \`npm run bench\` (bench/run.mjs); the analysis at the end comes from bench/NOTES.md. -->

Last full run: **${results.date}**, \`${results.command}\`, ${results.durationSeconds} s.
Machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB RAM, ${m.distro} (${m.os}), Node ${m.node};
${m.pinning}; load average (1/5/15 min) ${m.loadAverageAtStart.join(' / ')} at the start${m.loadAverageAtEnd ? `, ${m.loadAverageAtEnd.join(' / ')} at the end` : ''} (the machine is shared, so absolute
figures move between runs: compare the ratios, which are measured side by side in one run with the
servers taking turns). Mosquitto: ${results.servers.mosquitto}.

Each figure is the median of ${results.options.reps} runs (fan-out, cross-door) or ${results.options.minorReps ?? results.options.reps} runs (fan-in, latency, connections) of ${results.options.duration} s after ${results.options.warmup} s of warm-up.
Fan-out: 1 publisher, 100 subscribers, one topic, ${results.options.payloadBytes}-byte payloads, QoS 0, closed loop with at most
${results.options.fanoutWindow} messages in flight. Fan-in: 100 publishers, 1 wildcard subscriber, at most ${results.options.faninWindow} in flight.
Latency: open loop, 100 msg/s into 100 subscribers (10,000 deliveries/s), latency measured from the actual send (the generator's own lateness against its schedule is reported as "send lag").
"CPU-normalised" divides each side by the server CPU seconds it used (deliveries per CPU-second), which
noise from other work on the machine moves less than msg/s.

## Targets (issues 7 and 4): ${met} of ${known} met

${targetsTable(results)}

## Every measurement

${detailsTable(results)}

${connectionsText(results)}

## Latency versus load

![latency versus load](bench-latency.svg)

## Reproduce

\`\`\`sh
npm run bench              # full run, writes this page, docs/bench-latest.json, docs/bench-latency.svg
npm run bench -- --quick   # smoke check, under a minute
node bench/loadgen.mjs fanout --pub mqtt://127.0.0.1:1883 --sub ws://127.0.0.1:3000/ws?presence=0 --duration 5
\`\`\`

${notes.trim()}
`
}

/** The README's performance section (between its bench markers). @param {any} results */
export function renderReadmeSection (results) {
  const m = results.machine
  const met = results.targets.filter((/** @type {Target} */ t) => t.met === true).length
  const known = results.targets.filter((/** @type {Target} */ t) => t.met !== null).length
  return `## Performance

\`npm run bench\` starts, in one run, the gateway, a standalone Aedes broker, a raw \`ws\`
broadcast server and Mosquitto, drives them with the project's own load generator on
127.0.0.1 and prints the ratios below, then measures what durability costs (the on-disk
history log against \`--memory\`, the held QoS 1 PUBACK against stock Aedes order;
\`node bench/durability.mjs\` alone). \`npm run bench -- --quick\` is a smoke check.
Last run on this machine: ${results.date}; ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB RAM, ${m.distro} (${m.os}), Node ${m.node}. Full figures, method and what
changed to reach them: [docs/BENCH.md](docs/BENCH.md).

Targets (issues 7 and 4): ${met} of ${known} met

${targetsTable(results)}

![latency versus load](docs/bench-latency.svg)
`
}
