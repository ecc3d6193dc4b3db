#!/usr/bin/env node
// @ts-check
/**
 * Issue 14: N browsers joining one room, with the defaults browsers use (the chat page
 * opens /ws with presence on: `?presence=batch`), beside the same sockets with presence
 * off and a raw `ws` server (bench/baselines/ws-broadcast.mjs). For each size, each server
 * is started fresh; a joiner process opens N sockets, 100 handshakes in flight, and the
 * join time is from the first connect until every socket has its join answer (the gateway:
 * the `history` frame, which follows the subscription, the history read and the roster;
 * the raw server: its `welcome`). With presence on, one extra socket (opened first, counted
 * in N) watches `presence-batch` frames: "settled" is when its count says N.
 * RSS of the server is read after the joins, once the server is idle.
 *
 * The gateway runs with GATEWAY_BENCH_FLAGS (lib/servers.mjs): every bench socket comes
 * from 127.0.0.1, so the per-address caps (1,000 connections, 100 connects/s) and the
 * total cap (10,000) are raised to 100,000; their checks still run on every connection.
 *
 * The file descriptor limit here is 20,000 (hard): a process cannot hold 20,000 sockets
 * plus its listeners, so the "20k" size is 19,800 (reported as measured).
 *
 *   node bench/join.mjs [--sizes 1000,5000,10000,19800 | none] [--reps 3] [--legacy] [--no-mixed]
 *   npm run bench -- --only join
 */
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { GATEWAY_BENCH_FLAGS, INSPECT_ARGS, cpuOf, rssOf, settledRss, startAedes, startGateway, startWsBroadcast } from './lib/servers.mjs'
import { median } from './lib/samples.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const SELF = fileURLToPath(import.meta.url)
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------- joiner (child process)

/**
 * Opens `count` sockets to `url`, `concurrency` at a time; prints one JSON line when all
 * have joined (or failed), holds them until stdin says `close`.
 * @param {string} url @param {number} count @param {number} concurrency @param {'history' | 'welcome'} joinFrame @param {boolean} watch
 */
async function joiner (url, count, concurrency, joinFrame, watch) {
  /** @type {WebSocket[]} */
  const sockets = []
  let failed = 0
  /** @type {string | undefined} */
  let firstError
  const marker = Buffer.from(`{"type":"${joinFrame}"`)
  const t0 = performance.now()
  /** @type {number | undefined} */
  let settledAt
  let lastOnline = 0
  /** @param {number} i @param {boolean} watcher */
  const open = (i, watcher) => new Promise((resolve) => {
    // From 64 loopback addresses: with 20,000 sockets from one address the kernel's search
    // for a free ephemeral port, not the server, set the pace (raw ws: 2.6 s for 10k, 10 s
    // for 19.8k with 3 s of server CPU).
    const ws = new WebSocket(`${url}${url.includes('?') ? '&' : '?'}name=j${i}`, { perMessageDeflate: false, skipUTF8Validation: true, localAddress: `127.3.0.${(i % 64) + 1}` })
    let done = false
    const finish = (/** @type {Error | undefined} */ err) => {
      if (done) return
      done = true
      if (err) { failed++; firstError ??= err.message } else sockets.push(ws)
      resolve(undefined)
    }
    ws.on('message', (data) => {
      const b = /** @type {Buffer} */ (data)
      if (!done && b.subarray(0, marker.length).equals(marker)) finish(undefined)
      if (watcher && b.includes('"presence-batch"')) {
        const online = JSON.parse(b.toString()).online
        lastOnline = online
        if (online >= count && settledAt === undefined) settledAt = performance.now()
      }
    })
    ws.on('error', (err) => finish(err))
    ws.on('close', () => finish(new Error('closed before joining')))
    setTimeout(() => finish(new Error('no join within 300 s')), 300_000).unref()
  })
  let next = 0
  if (watch) { await open(next++, true) }
  const worker = async () => { while (next < count) await open(next++, false) }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const joinedMs = performance.now() - t0
  if (watch && failed === 0) {
    const until = performance.now() + 30_000
    while (settledAt === undefined && performance.now() < until) await sleep(20)
  }
  process.stdout.write(JSON.stringify({
    joined: sockets.length, failed, firstError,
    joinMs: Math.round(joinedMs),
    settledMs: settledAt === undefined ? undefined : Math.round(settledAt - t0),
    lastOnline: watch ? lastOnline : undefined
  }) + '\n')
  await new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin })
    rl.on('line', (l) => { if (l.trim() === 'close') resolve(undefined) })
    rl.on('close', () => resolve(undefined))
  })
  for (const ws of sockets) ws.terminate()
  process.exit(0)
}

// ---------------------------------------------------------------- one measurement

/**
 * Runs the joiner against `url` and returns its figures; `stop()` closes its sockets.
 * @param {string} url @param {number} count @param {'history' | 'welcome'} joinFrame @param {boolean} watch
 */
async function runJoiner (url, count, joinFrame, watch) {
  const child = spawn(process.execPath, [SELF, '--child', url, String(count), '100', joinFrame, watch ? '1' : '0'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const result = await new Promise((resolve) => {
    // On a shared machine under load, 20,000 raw sockets took 164 s: a generous bound.
    const timer = setTimeout(() => resolve({ error: 'no result within 600 s' }), 600_000)
    createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) }).once('line', (line) => {
      clearTimeout(timer)
      try { resolve(JSON.parse(line)) } catch { resolve({ error: line }) }
    })
    child.once('exit', (code) => { clearTimeout(timer); resolve({ error: `joiner exited ${code}` }) })
  })
  return {
    result: /** @type {Record<string, any>} */ (result),
    stop: async () => {
      child.stdin?.end('close\n')
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve))
    }
  }
}

/** Waits until a process uses under 5 % of a core over 250 ms (at most `maxMs`). @param {number} pid */
async function idle (pid, maxMs = 10_000) {
  const until = Date.now() + maxMs
  for (;;) {
    const c0 = cpuOf(pid) ?? 0
    await sleep(250)
    if ((cpuOf(pid) ?? 0) - c0 < 0.0125 || Date.now() > until) return
  }
}

/**
 * @typedef {{ id: string, label: string, start: () => Promise<import('./lib/servers.mjs').Server>, door: string, query: string, joinFrame: 'history' | 'welcome', watch: boolean }} Variant
 */

/** @param {boolean} legacy @returns {Variant[]} */
function variants (legacy) {
  const gw = () => startGateway(ROOT, undefined)
  /** @type {Variant[]} */
  const list = [
    { id: 'raw', label: 'raw ws server', start: () => startWsBroadcast(ROOT, undefined), door: 'ws', query: '', joinFrame: 'welcome', watch: false },
    { id: 'batch', label: 'gateway /ws, presence on (?presence=batch, as the pages)', start: gw, door: 'ws', query: '?presence=batch', joinFrame: 'history', watch: true },
    { id: 'off', label: 'gateway /ws, presence off (?presence=0)', start: gw, door: 'ws', query: '?presence=0', joinFrame: 'history', watch: false }
  ]
  if (legacy) list.push({ id: 'legacy', label: 'gateway /ws, older presence frames (no ?presence)', start: gw, door: 'ws', query: '', joinFrame: 'history', watch: false })
  return list
}

/** @param {Variant} v @param {number} count */
async function measureOnce (v, count) {
  const server = await v.start()
  try {
    await idle(server.pid, 3000)
    const rss0 = rssOf(server.pid)
    const cpu0 = cpuOf(server.pid)
    const j = await runJoiner(`${server.urls[v.door]}${v.query}`, count, v.joinFrame, v.watch)
    const cpu1 = cpuOf(server.pid)
    await idle(server.pid)
    const rss1 = rssOf(server.pid)
    await j.stop()
    const r = j.result
    return {
      ...r,
      serverCpuS: cpu0 !== undefined && cpu1 !== undefined ? Math.round((cpu1 - cpu0) * 100) / 100 : undefined,
      rssBefore: rss0,
      rssAfter: rss1,
      bytesPerSocket: rss0 && rss1 && r.joined ? Math.round((rss1 - rss0) / r.joined) : undefined
    }
  } finally {
    await server.stop()
  }
}

/**
 * 10,000 /ws with presence on plus 10,000 MQTT/TCP idle on one gateway (9,900 each under
 * the fd limit; the RSS at 2 x 10,000 is extrapolated from the bytes per socket).
 * @param {number} perDoor
 */
async function mixedOnce (perDoor) {
  const server = await startGateway(ROOT, undefined, undefined, undefined, INSPECT_ARGS)
  const holders = []
  try {
    await idle(server.pid, 3000)
    const rss0 = rssOf(server.pid)
    const mq = spawn(process.execPath, [join(ROOT, 'bench/loadgen.mjs'), 'connect', '--url', server.urls.mqtt, '--count', String(perDoor), '--hold', '300', '--max-seconds', '400'], { stdio: ['pipe', 'pipe', 'ignore'] })
    holders.push({ stop: async () => { mq.stdin?.end('close\n'); if (mq.exitCode === null) await new Promise((resolve) => mq.once('exit', resolve)) } })
    const mqtt = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: 'no result within 150 s' }), 150_000)
      createInterface({ input: /** @type {import('node:stream').Readable} */ (mq.stdout) }).on('line', (line) => {
        try { const x = JSON.parse(line); if (x.event === 'ready' || x.error) { clearTimeout(timer); resolve(x) } } catch {}
      })
    })
    await idle(server.pid)
    const j = await runJoiner(`${server.urls.ws}?presence=batch`, perDoor, 'history', true)
    holders.push(j)
    await idle(server.pid)
    const rss1 = rssOf(server.pid)
    const settled = await settledRss(server)
    const n = (/** @type {any} */ (mqtt).connected ?? 0) + (j.result.joined ?? 0)
    const at2x10k = (/** @type {number | undefined} */ rss) => rss0 && rss && n ? Math.round(rss0 + 20_000 * (rss - rss0) / n) : undefined
    return {
      perDoor,
      mqttConnected: /** @type {any} */ (mqtt).connected,
      wsJoined: j.result.joined,
      rssBefore: rss0,
      rssAfter: rss1,
      rssSettled: settled.rss,
      settledError: settled.error,
      rssAt2x10kBurst: at2x10k(rss1),
      rssAt2x10k: at2x10k(settled.rss)
    }
  } finally {
    for (const h of holders) await h.stop()
    await server.stop()
  }
}

/**
 * RSS per idle MQTT/TCP connection: the gateway (presence on, --memory so the retained
 * presence of every client is held in its heap) against a standalone Aedes of the same
 * version, `n` clients each, read right after the connects and once settled.
 * @param {'gateway' | 'aedes'} kind
 * @param {number} n
 */
async function mqttSocketOnce (kind, n) {
  const server = kind === 'gateway' ? await startGateway(ROOT, undefined, undefined, undefined, INSPECT_ARGS) : await startAedes(ROOT, undefined, INSPECT_ARGS)
  let mq
  try {
    await idle(server.pid, 3000)
    const rss0 = rssOf(server.pid)
    mq = spawn(process.execPath, [join(ROOT, 'bench/loadgen.mjs'), 'connect', '--url', server.urls.mqtt, '--count', String(n), '--hold', '300', '--max-seconds', '400'], { stdio: ['pipe', 'pipe', 'ignore'] })
    const ready = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: 'no result within 150 s' }), 150_000)
      createInterface({ input: /** @type {import('node:stream').Readable} */ (mq.stdout) }).on('line', (line) => {
        try { const x = JSON.parse(line); if (x.event === 'ready' || x.error) { clearTimeout(timer); resolve(x) } } catch {}
      })
    })
    const connected = /** @type {any} */ (ready).connected ?? 0
    await idle(server.pid)
    const rss1 = rssOf(server.pid)
    const settled = await settledRss(server)
    const per = (/** @type {number | undefined} */ rss) => rss0 && rss && connected ? Math.round((rss - rss0) / connected) : undefined
    return { kind, connected, rssBefore: rss0, rssAfter: rss1, rssSettled: settled.rss, settledError: settled.error, bytesPerSocketBurst: per(rss1), bytesPerSocket: per(settled.rss) }
  } finally {
    if (mq) { mq.stdin?.end('close\n'); if (mq.exitCode === null) await new Promise((resolve) => mq?.once('exit', resolve)) }
    await server.stop()
  }
}

/**
 * The whole scenario: every size, every variant, `reps` times (variants take turns
 * inside a repetition, so noise lands on all alike); medians and ratios.
 * @param {{ sizes?: number[], reps?: number, legacy?: boolean, mixed?: boolean, log?: (msg: string) => void }} [o]
 */
export async function measureJoin (o = {}) {
  const log = o.log ?? ((/** @type {string} */ m) => process.stderr.write(`bench join: ${m}\n`))
  const fd = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim()) || 1024
  const cap = fd - 200
  const sizes = (o.sizes ?? [1000, 5000, 10_000, 20_000]).map((n) => Math.min(n, cap))
  const reps = o.reps ?? 3
  const vs = variants(o.legacy ?? false)
  /** @type {Record<string, Record<string, any[]>>} */
  const runs = {}
  for (const size of sizes) {
    for (let rep = 1; rep <= reps; rep++) {
      for (const v of rep % 2 ? vs : [...vs].reverse()) {
        const r = await measureOnce(v, size)
        ;((runs[size] ??= {})[v.id] ??= []).push(r)
        log(`[${rep}/${reps}] ${size} ${v.id}: ${r.error ?? `${r.joined} joined (${r.failed} failed) in ${r.joinMs} ms${r.settledMs !== undefined ? `, presence settled at ${r.settledMs} ms` : ''}, server cpu ${r.serverCpuS} s, RSS ${mb(r.rssBefore)} -> ${mb(r.rssAfter)} MB, ${r.bytesPerSocket} B/socket`}`)
      }
    }
  }
  /** @type {Record<string, Record<string, any>>} */
  const medians = {}
  for (const [size, byV] of Object.entries(runs)) {
    for (const [id, list] of Object.entries(byV)) {
      const ok = list.filter((r) => !r.error)
      ;(medians[size] ??= {})[id] = {
        joinMs: median(ok.map((r) => r.joinMs)),
        settledMs: median(ok.map((r) => r.settledMs).filter((x) => x !== undefined)),
        serverCpuS: median(ok.map((r) => r.serverCpuS)),
        rssAfter: median(ok.map((r) => r.rssAfter)),
        bytesPerSocket: median(ok.map((r) => r.bytesPerSocket)),
        failed: ok.reduce((a, r) => a + (r.failed ?? 0), 0)
      }
    }
    const m = medians[size]
    if (m?.raw?.joinMs && m.batch?.joinMs) {
      m.ratios = {
        joinBatchVsRaw: round2(m.batch.joinMs / m.raw.joinMs),
        joinOffVsRaw: m.off ? round2(m.off.joinMs / m.raw.joinMs) : undefined,
        bytesBatchVsRaw: round2(m.batch.bytesPerSocket / m.raw.bytesPerSocket)
      }
    }
  }
  /** @type {Record<string, any> | undefined} */
  let mixed
  if (o.mixed ?? true) {
    const perDoor = Math.min(10_000, Math.floor((fd - 200) / 2))
    const list = []
    for (let rep = 1; rep <= Math.min(reps, 2); rep++) {
      const r = await mixedOnce(perDoor)
      list.push(r)
      log(`[${rep}] mixed ${perDoor} MQTT + ${perDoor} /ws (presence on): RSS ${mb(r.rssBefore)} -> ${mb(r.rssAfter)} MB, settled ${mb(r.rssSettled)} MB${r.settledError ? ` (${r.settledError})` : ''}; at 2 x 10,000: ${mb(r.rssAt2x10k)} MB settled, ${mb(r.rssAt2x10kBurst)} MB right after`)
    }
    mixed = {
      perDoor,
      runs: list,
      rssAfter: median(list.map((r) => r.rssAfter)),
      rssSettled: median(list.map((r) => r.rssSettled)),
      rssAt2x10kBurst: median(list.map((r) => r.rssAt2x10kBurst)),
      rssAt2x10k: median(list.map((r) => r.rssAt2x10k))
    }
  }
  /** @type {Record<string, any> | undefined} */
  let mqttSocket
  if (o.mixed ?? true) {
    const n = Math.min(10_000, fd - 200)
    /** @type {Record<string, any[]>} */
    const byKind = { gateway: [], aedes: [] }
    for (let rep = 1; rep <= Math.min(reps, 2); rep++) {
      for (const kind of /** @type {const} */ (rep % 2 ? ['gateway', 'aedes'] : ['aedes', 'gateway'])) {
        const r = await mqttSocketOnce(kind, n)
        byKind[kind]?.push(r)
        log(`[${rep}] ${n} idle MQTT/TCP on ${kind}: RSS ${mb(r.rssBefore)} -> ${mb(r.rssAfter)} MB (${r.bytesPerSocketBurst} B/socket), settled ${mb(r.rssSettled)} MB${r.settledError ? ` (${r.settledError})` : ''} (${r.bytesPerSocket} B/socket)`)
      }
    }
    const med = (/** @type {string} */ kind, /** @type {string} */ key) => median((byKind[kind] ?? []).map((r) => r[key]).filter((x) => x !== undefined))
    mqttSocket = {
      n,
      runs: byKind,
      gateway: { bytesPerSocket: med('gateway', 'bytesPerSocket'), bytesPerSocketBurst: med('gateway', 'bytesPerSocketBurst') },
      aedes: { bytesPerSocket: med('aedes', 'bytesPerSocket'), bytesPerSocketBurst: med('aedes', 'bytesPerSocketBurst') }
    }
  }
  const bigs = sizes.filter((s) => medians[s]?.batch)
  const s10 = bigs.find((s) => s >= 9000 && s <= 10_000)
  const s20 = bigs.find((s) => s > 10_000)
  const targets = {
    flags: GATEWAY_BENCH_FLAGS.join(' '),
    fdLimit: fd,
    join10kVsRaw: s10 ? medians[s10]?.ratios?.joinBatchVsRaw : undefined,
    join10kMs: s10 ? medians[s10]?.batch.joinMs : undefined,
    join20kVs10k: s10 && s20 ? round2(medians[s20]?.batch.joinMs / medians[s10]?.batch.joinMs) : undefined,
    size20k: s20,
    bytesPerSocketVsRaw: s10 ? medians[s10]?.ratios?.bytesBatchVsRaw : undefined,
    mixedRssAt2x10kMB: mixed ? mb(mixed.rssAt2x10k) : undefined,
    mixedRssAt2x10kBurstMB: mixed ? mb(mixed.rssAt2x10kBurst) : undefined,
    mqttSocketB: mqttSocket?.gateway.bytesPerSocket,
    mqttSocketAedesB: mqttSocket?.aedes.bytesPerSocket,
    mqttSocketVsAedes: mqttSocket?.gateway.bytesPerSocket && mqttSocket.aedes.bytesPerSocket ? round2(mqttSocket.gateway.bytesPerSocket / mqttSocket.aedes.bytesPerSocket) : undefined,
    mqttSocketVsAedesBurst: mqttSocket?.gateway.bytesPerSocketBurst && mqttSocket.aedes.bytesPerSocketBurst ? round2(mqttSocket.gateway.bytesPerSocketBurst / mqttSocket.aedes.bytesPerSocketBurst) : undefined
  }
  return { sizes, reps, medians, mixed, mqttSocket, targets }
}

/** @param {number} x */
function round2 (x) { return Math.round(x * 100) / 100 }
/** @param {number | undefined} b */
function mb (b) { return b === undefined ? '?' : Math.round(b / 2 ** 20) }

/** A Markdown table of the medians. @param {Awaited<ReturnType<typeof measureJoin>>} r */
export function renderJoin (r) {
  const lines = ['| clients | server | join (median) | presence settled | server CPU | RSS after | bytes/socket | join vs raw |', '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |']
  for (const size of r.sizes) {
    const m = r.medians[size] ?? {}
    for (const id of ['raw', 'batch', 'off', 'legacy']) {
      const x = m[id]
      if (!x) continue
      const ratio = m.raw?.joinMs ? round2(x.joinMs / m.raw.joinMs) : undefined
      lines.push(`| ${size} | ${id} | ${x.joinMs} ms | ${x.settledMs ?? '-'}${x.settledMs ? ' ms' : ''} | ${x.serverCpuS} s | ${mb(x.rssAfter)} MB | ${x.bytesPerSocket} | ${ratio ?? '-'}x |`)
    }
  }
  const t = r.targets
  lines.push('', `Targets: 10k join ${t.join10kMs} ms (<= 10,000), ${t.join10kVsRaw}x raw ws (<= 3); ${t.size20k ?? '20k'} vs 10k ${t.join20kVs10k}x (<= 2); bytes/socket ${t.bytesPerSocketVsRaw}x raw (<= 2); 2 x 10,000 idle RSS ${t.mixedRssAt2x10kMB} MB settled (< 250; ${t.mixedRssAt2x10kBurstMB} MB right after the joins); MQTT/TCP socket ${t.mqttSocketB} B settled vs Aedes ${t.mqttSocketAedesB} B = ${t.mqttSocketVsAedes}x (<= 1; right after the connects ${t.mqttSocketVsAedesBurst}x). Gateway flags: ${t.flags}. fd limit ${t.fdLimit}.`)
  return lines.join('\n')
}

if (process.argv[2] === '--child') {
  const [url, count, conc, frame, watch] = process.argv.slice(3)
  await joiner(String(url), Number(count), Number(conc), /** @type {'history' | 'welcome'} */ (frame), watch === '1')
} else if (process.argv[1] === SELF) {
  const argv = process.argv.slice(2)
  const val = (/** @type {string} */ f) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined }
  const r = await measureJoin({
    sizes: val('--sizes') === 'none' ? [] : val('--sizes')?.split(',').map(Number),
    reps: val('--reps') ? Number(val('--reps')) : undefined,
    legacy: argv.includes('--legacy'),
    mixed: !argv.includes('--no-mixed')
  })
  process.stdout.write(renderJoin(r) + '\n')
  if (val('--json')) (await import('node:fs')).writeFileSync(String(val('--json')), JSON.stringify(r, null, 2) + '\n')
}
