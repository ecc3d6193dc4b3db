#!/usr/bin/env node
// @ts-check
/**
 * Issue 14: a reconnect storm. N MQTT devices with persistent sessions (clean=false), a
 * QoS 1 command subscription, a retained `presence/<id>` of `online` and a will of
 * `offline` on the same topic (the usual device pattern) all lose their connection at
 * once, as after a Wi-Fi outage: sockets destroyed, no DISCONNECT, so every will fires.
 * While they are away one QoS 1 command per device is published and queued in its
 * session. Then they all come back, each after a random 0-2 s (a device's reconnect
 * jitter). Measured:
 *
 * - back: time until every device has its CONNACK with session present;
 * - commands: time until every queued command reached its device, and how many were lost;
 * - online: time until a /ws client with presence on (`?presence=batch`, as the chat page)
 *   counts every device online again;
 * - `/api/health`: polled every 100 ms from before the drop to the end, its latency.
 *
 * The gateway runs with its defaults, on disk (a fresh --data-dir): sessions, queued
 * commands and retained presence are stored as users keep them. The devices connect from
 * 1,000 loopback addresses (127.1.x.y, 10 devices each), so the per-address defaults
 * (1,000 connections, 100 connects a second) apply unchanged; only --max-connections
 * (default 10,000 in all) is raised to make room for N devices plus the observers.
 *
 *   node bench/storm.mjs [--devices 10000] [--reps 1]
 *   npm run bench -- --only storm
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqttPacket from 'mqtt-packet'
import WebSocket from 'ws'
import { cpuOf, rssOf, startGateway } from './lib/servers.mjs'
import { median } from './lib/samples.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const SELF = fileURLToPath(import.meta.url)
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => performance.now()
const ADDRESSES = 1000
/** The hard ceiling of one storm run (every phase has its own bound below it). */
const RUN_CEILING_MS = 300_000
/** How long the devices have to come back before the run says what is missing. */
const BACK_WITHIN_MS = 120_000

/** @param {number} i */
const deviceId = (i) => `storm-${i}`
/** @param {number} i */
const sourceAddress = (i) => { const a = i % ADDRESSES; return `127.1.${a >> 8}.${(a & 255) || 1}` }

// ---------------------------------------------------------------- devices (child process)

/** The p-quantile of `xs` in whole ms. @param {number[]} xs @param {number} p */
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0) : undefined }

/**
 * One device: a raw MQTT 3.1.1 connection (mqtt-packet), persistent session, will on its
 * presence topic, QoS 1 command subscription. Acknowledges every QoS 1 PUBLISH it gets.
 */
class Device {
  /** @param {number} i @param {URL} url @param {(d: Device, cmd: string) => void} onCommand */
  constructor (i, url, onCommand) {
    this.i = i
    this.id = deviceId(i)
    this.url = url
    this.onCommand = onCommand
    /** @type {net.Socket | undefined} */
    this.socket = undefined
    this.sessionPresent = false
  }

  /** Connects; resolves on CONNACK 0 (and, the first time, the SUBACK). */
  connect (first = false) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.url.hostname, port: Number(this.url.port), localAddress: sourceAddress(this.i) })
      this.socket = socket
      socket.setNoDelay(true)
      const parser = mqttPacket.parser()
      const timer = setTimeout(() => { reject(new Error('no CONNACK within 60 s')); socket.destroy() }, 60_000)
      const presence = `presence/${this.id}`
      parser.on('packet', (/** @type {any} */ p) => {
        if (p.cmd === 'connack') {
          if (p.returnCode !== 0) { clearTimeout(timer); reject(new Error(`CONNACK ${p.returnCode}`)); socket.destroy(); return }
          this.sessionPresent = p.sessionPresent === true
          const out = []
          if (first) out.push(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `storm/${this.id}/cmd`, qos: 1 }] }))
          out.push(mqttPacket.generate({ cmd: 'publish', topic: presence, payload: Buffer.from('online'), qos: 1, messageId: 2, retain: true, dup: false }))
          socket.write(Buffer.concat(out))
          if (!first) { clearTimeout(timer); resolve(undefined) }
        } else if (p.cmd === 'suback') {
          clearTimeout(timer)
          if (p.granted[0] !== 1) { reject(new Error(`SUBACK ${p.granted[0]}`)); return }
          resolve(undefined)
        } else if (p.cmd === 'publish') {
          if (p.qos > 0) socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
          this.onCommand(this, String(p.payload))
        }
      })
      parser.on('error', (err) => { clearTimeout(timer); reject(err); socket.destroy() })
      socket.on('data', (d) => parser.parse(d))
      socket.on('error', (err) => { clearTimeout(timer); reject(err) })
      socket.on('close', () => { clearTimeout(timer); reject(new Error('closed before CONNACK')) })
      socket.on('connect', () => {
        socket.write(mqttPacket.generate({
          cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: this.id, keepalive: 120,
          will: { topic: presence, payload: Buffer.from('offline'), qos: 1, retain: true }
        }))
      })
    })
  }

  /** The Wi-Fi goes: the socket is gone, no DISCONNECT (the will fires). */
  drop () { this.socket?.destroy() }
}

/**
 * The devices' process: `ready` once all are connected; on `drop` it destroys every
 * socket; on `reconnect` each device comes back after a random 0-2 s and the process
 * reports when all are back and when every expected command arrived.
 * @param {string} url @param {number} count
 */
async function devicesMain (url, count) {
  const u = new URL(url)
  const say = (/** @type {object} */ o) => process.stdout.write(JSON.stringify(o) + '\n')
  /** @type {Set<number>} */
  const commanded = new Set()
  let reconnectAt = 0
  let commandsDoneAt = 0
  let duplicates = 0
  let expectCommands = false
  const devices = Array.from({ length: count }, (_, i) => new Device(i, u, (d, cmd) => {
    if (!expectCommands) return
    if (cmd !== `cmd-${d.i}`) return
    if (commanded.has(d.i)) { duplicates++; return }
    commanded.add(d.i)
    if (commanded.size === count) commandsDoneAt = now()
  }))
  const ceiling = setTimeout(() => { say({ error: 'devices: run ceiling reached' }); process.exit(3) }, RUN_CEILING_MS)
  ceiling.unref()

  // Phase 1: connect everyone, 200 in flight.
  const t0 = now()
  let next = 0
  let failed = 0
  /** @type {string | undefined} */
  let firstError
  await Promise.all(Array.from({ length: 200 }, async () => {
    while (next < count) {
      const d = /** @type {Device} */ (devices[next++])
      try { await d.connect(true) } catch (err) { failed++; firstError ??= /** @type {Error} */ (err).message }
    }
  }))
  say({ event: 'ready', connected: count - failed, failed, firstError, connectMs: Math.round(now() - t0) })

  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    if (line === 'drop') {
      for (const d of devices) d.drop()
      say({ event: 'dropped' })
    } else if (line === 'reconnect') {
      expectCommands = true
      reconnectAt = now()
      let back = 0
      let backFailed = 0
      let sessionLost = 0
      let lastBackAt = 0
      /** @type {number[]} */
      const backTimes = []
      /** @type {Record<string, number>} */
      const errors = {}
      /** @type {string | undefined} */
      let backError
      await Promise.all(devices.map(async (d) => {
        await sleep(Math.random() * 2000)
        // A device retries until it is back, as its firmware would (1 s apart).
        for (let attempt = 0; attempt < 30; attempt++) {
          try {
            await d.connect(false)
            back++
            lastBackAt = now()
            backTimes.push(lastBackAt - reconnectAt)
            if (!d.sessionPresent) sessionLost++
            return
          } catch (err) {
            backError ??= /** @type {Error} */ (err).message
            const m = /** @type {Error} */ (err).message
            errors[m] = (errors[m] ?? 0) + 1
            await sleep(1000)
          }
        }
        backFailed++
      }))
      // Then up to 30 s for the last queued commands.
      const waitUntil = now() + 30_000
      while (commanded.size < count && now() < waitUntil) await sleep(100)
      say({
        event: 'back',
        back,
        backFailed,
        backError,
        sessionLost,
        backMs: Math.round(lastBackAt - reconnectAt),
        backP50Ms: pct(backTimes, 0.5),
        backP90Ms: pct(backTimes, 0.9),
        backP99Ms: pct(backTimes, 0.99),
        retries: errors,
        commandsReceived: commanded.size,
        commandsLost: count - commanded.size,
        duplicates,
        commandsMs: commandsDoneAt ? Math.round(commandsDoneAt - reconnectAt) : undefined
      })
    } else if (line === 'close') {
      for (const d of devices) d.socket?.destroy()
      break
    }
  }
  process.exit(0)
}

// ---------------------------------------------------------------- observers (this process)

/** GET /api/health every 100 ms; latencies in ms. @param {string} httpUrl */
function healthProbe (httpUrl) {
  /** @type {number[]} */
  const samples = []
  /** @type {number[]} when each sample started */
  const at = []
  let failures = 0
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const t = now()
      try {
        const res = await fetch(`${httpUrl}/api/health`, { signal: AbortSignal.timeout(5000) })
        await res.arrayBuffer()
        if (!res.ok) failures++
      } catch { failures++ }
      samples.push(now() - t)
      at.push(t)
      await sleep(100)
    }
  })()
  return {
    samples,
    /** The slowest answer among those started in [from, to). @param {number} from @param {number} to */
    maxBetween (from, to) {
      let m = 0
      for (let i = 0; i < samples.length; i++) if ((at[i] ?? 0) >= from && (at[i] ?? 0) < to) m = Math.max(m, samples[i] ?? 0)
      return Math.round(m)
    },
    async stop () {
      stopped = true
      await loop
      const sorted = [...samples].sort((a, b) => a - b)
      const q = (/** @type {number} */ p) => sorted.length ? Math.round((sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0) * 10) / 10 : undefined
      return { count: samples.length, failures, p50: q(0.5), p99: q(0.99), max: q(1), over250: samples.filter((s) => s >= 250).length }
    }
  }
}

/** A /ws client with presence on, as the chat page; tells the time `online` reaches a count. @param {string} wsUrl */
function presenceWatcher (wsUrl) {
  const ws = new WebSocket(`${wsUrl}?presence=batch&name=storm-watch`, { perMessageDeflate: false })
  let online = 0
  /** @type {Array<{ atLeast: number, atMost: number, resolve: (ms: number) => void }>} */
  let waiters = []
  const check = () => {
    const t = now()
    waiters = waiters.filter((w) => {
      if (online >= w.atLeast && online <= w.atMost) { w.resolve(t); return false }
      return true
    })
  }
  ws.on('message', (data, binary) => {
    if (binary) return
    const s = data.toString()
    if (!s.startsWith('{"type":"presence-batch"')) return
    try { online = JSON.parse(s).online ?? online } catch {}
    check()
  })
  const opened = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  return {
    opened,
    get online () { return online },
    /** Resolves with the time `online` is within [atLeast, atMost], or undefined after `ms`. */
    when (/** @type {number} */ atLeast, /** @type {number} */ atMost, /** @type {number} */ ms) {
      return /** @type {Promise<number | undefined>} */ (new Promise((resolve) => {
        const w = { atLeast, atMost, resolve: (/** @type {number} */ t) => { clearTimeout(timer); resolve(t) } }
        const timer = setTimeout(() => { waiters = waiters.filter((x) => x !== w); resolve(undefined) }, ms)
        waiters.push(w)
        check()
      }))
    },
    close () { ws.terminate() }
  }
}

/** Publishes one QoS 1 command per device over MQTT/TCP; resolves when all are acknowledged. @param {string} url @param {number} count */
function publishCommands (url, count) {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const socket = net.connect({ host: u.hostname, port: Number(u.port), localAddress: '127.2.0.1' })
    const parser = mqttPacket.parser()
    let acked = 0
    let sent = 0
    let connacked = false
    const inFlight = 500
    // A backend keeps under the default --msg-rate (1,000 a second per client, bursts of
    // 2,000; over it the client is disconnected): 900 a second.
    const perSecond = 900
    const t0 = now()
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`commands: ${acked}/${count} acknowledged within 120 s`)) }, 120_000)
    const pace = setInterval(() => sendMore(), 50)
    const sendMore = () => {
      const allowed = Math.min(count, Math.floor(((now() - t0) / 1000) * perSecond) + 100)
      const bufs = []
      while (sent < allowed && sent - acked < inFlight) {
        const i = sent++
        bufs.push(mqttPacket.generate({ cmd: 'publish', topic: `storm/${deviceId(i)}/cmd`, payload: Buffer.from(`cmd-${i}`), qos: 1, messageId: (i % 65535) + 1, retain: false, dup: false }))
      }
      if (bufs.length) socket.write(Buffer.concat(bufs))
    }
    parser.on('packet', (/** @type {any} */ p) => {
      if (p.cmd === 'connack') { connacked = true; if (p.returnCode) { reject(new Error(`commander CONNACK ${p.returnCode}`)); return } sendMore() }
      if (p.cmd === 'puback') {
        acked++
        if (acked === count) { clearTimeout(timer); clearInterval(pace); socket.end(mqttPacket.generate({ cmd: 'disconnect' })); resolve(undefined) } else sendMore()
      }
    })
    socket.on('data', (d) => parser.parse(d))
    socket.on('error', (err) => { clearTimeout(timer); clearInterval(pace); reject(err) })
    socket.on('close', () => { clearInterval(pace); if (acked < count) { clearTimeout(timer); reject(new Error(`commander closed after ${acked} acknowledged (${connacked ? 'after' : 'before'} CONNACK)`)) } })
    socket.on('connect', () => socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'storm-commander', keepalive: 60 })))
  })
}

/**
 * One storm against a fresh gateway on a fresh data dir.
 * @param {number} count
 * @param {(msg: string) => void} log
 */
export async function stormOnce (count, log) {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'fusion-storm-'))
  const gw = await startGateway(ROOT, undefined, ['--data-dir', dataDir, '--max-connections', String(count + 1000)])
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let dev
  /** @type {ReturnType<typeof presenceWatcher> | undefined} */
  let watcher
  /** @type {ReturnType<typeof healthProbe> | undefined} */
  let health
  try {
    const urls = /** @type {Record<string, string>} */ (gw.urls)
    const mqttUrl = /** @type {string} */ (urls.mqtt)
    const httpUrl = /** @type {string} */ (urls.http)
    watcher = presenceWatcher(/** @type {string} */ (urls.ws))
    await watcher.opened
    dev = spawn(process.execPath, [SELF, '--devices-child', mqttUrl, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] })
    /** @type {Array<(o: any) => void>} */
    const listeners = []
    createInterface({ input: /** @type {import('node:stream').Readable} */ (dev.stdout) }).on('line', (line) => {
      let o
      try { o = JSON.parse(line) } catch { return }
      for (const l of [...listeners]) l(o)
    })
    const next = (/** @type {string} */ event, /** @type {number} */ ms) => /** @type {Promise<any>} */ (new Promise((resolve) => {
      const timer = setTimeout(() => { listeners.splice(listeners.indexOf(l), 1); resolve({ error: `no ${event} within ${ms / 1000} s` }) }, ms)
      const l = (/** @type {any} */ o) => { if (o.event === event || o.error) { clearTimeout(timer); listeners.splice(listeners.indexOf(l), 1); resolve(o) } }
      listeners.push(l)
    }))
    const ready = await next('ready', 180_000)
    if (ready.error || ready.failed) throw new Error(`devices did not all connect: ${ready.error ?? `${ready.failed} failed (${ready.firstError})`}`)
    log(`${count} devices connected in ${ready.connectMs} ms (200 in flight)`)
    // The watcher itself is online too: every device online is count + 1.
    const allOnline = await watcher.when(count + 1, Infinity, 60_000)
    if (allOnline === undefined) throw new Error(`presence shows ${watcher.online} online, expected ${count + 1}`)
    await sleep(2000)
    const rssBefore = rssOf(gw.pid)
    const cpu0 = cpuOf(gw.pid)
    health = healthProbe(httpUrl)
    await sleep(1000)

    // The outage.
    const droppedAt = now()
    dev.stdin?.write('drop\n')
    await next('dropped', 10_000)
    const allOffline = await watcher.when(0, 1, 60_000)
    const offlineMs = allOffline === undefined ? undefined : Math.round(allOffline - droppedAt)
    log(`dropped: presence shows ${watcher.online} online ${offlineMs === undefined ? 'after 60 s (not all wills seen)' : `after ${offlineMs} ms`}`)
    const cmdAt = now()
    await publishCommands(mqttUrl, count)
    const commandsQueuedMs = Math.round(now() - cmdAt)
    log(`${count} QoS 1 commands queued for the offline sessions in ${commandsQueuedMs} ms`)

    // They come back.
    const reconnectAt = now()
    dev.stdin?.write('reconnect\n')
    const onlineAgain = watcher.when(count + 1, Infinity, BACK_WITHIN_MS)
    const back = await next('back', BACK_WITHIN_MS + 60_000)
    const onlineAt = await onlineAgain
    const cpu1 = cpuOf(gw.pid)
    const endAt = now()
    const healthMaxByPhase = {
      drop: health.maxBetween(droppedAt, cmdAt),
      commands: health.maxBetween(cmdAt, reconnectAt),
      reconnect: health.maxBetween(reconnectAt, endAt)
    }
    const h = await health.stop()
    health = undefined
    const rssAfter = rssOf(gw.pid)
    const r = {
      devices: count,
      connectMs: ready.connectMs,
      offlineMs,
      commandsQueuedMs,
      backMs: back.backMs,
      backP50Ms: back.backP50Ms,
      backP90Ms: back.backP90Ms,
      backP99Ms: back.backP99Ms,
      retries: back.retries,
      backFailed: back.backFailed ?? (back.error ? count : undefined),
      backError: back.backError ?? back.error,
      sessionLost: back.sessionLost,
      commandsMs: back.commandsMs,
      commandsLost: back.commandsLost,
      duplicates: back.duplicates,
      onlineMs: onlineAt === undefined ? undefined : Math.round(onlineAt - reconnectAt),
      onlineSeen: watcher.online,
      health: h,
      healthMaxByPhase,
      serverCpuS: cpu0 !== undefined && cpu1 !== undefined ? Math.round((cpu1 - cpu0) * 10) / 10 : undefined,
      rssBefore,
      rssAfter
    }
    log(`back: ${r.backFailed ? `${r.backFailed} never came back; ` : ''}all CONNACKs in ${r.backMs} ms, every command in ${r.commandsMs} ms (${r.commandsLost} lost, ${r.sessionLost} sessions lost), all shown online at ${r.onlineMs} ms; /api/health p50 ${h.p50} ms p99 ${h.p99} ms max ${h.max} ms (${h.over250} of ${h.count} over 250 ms; slowest in the drop ${healthMaxByPhase.drop} ms, commands ${healthMaxByPhase.commands} ms, reconnect ${healthMaxByPhase.reconnect} ms)`)
    return r
  } catch (err) {
    throw new Error(`${/** @type {Error} */ (err).message} (gateway said: ${gw.stderrTail.slice(-5).join(' | ') || 'nothing'})`)
  } finally {
    if (health) await health.stop()
    watcher?.close()
    if (dev && dev.exitCode === null) {
      dev.stdin?.end('close\n')
      await Promise.race([new Promise((resolve) => dev?.once('exit', resolve)), sleep(10_000)])
      if (dev.exitCode === null) dev.kill('SIGKILL')
    }
    await gw.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/**
 * `reps` storms of `devices` devices; medians.
 * @param {{ devices?: number, reps?: number, log?: (msg: string) => void }} [o]
 */
export async function measureStorm (o = {}) {
  const log = o.log ?? ((/** @type {string} */ m) => process.stderr.write(`bench storm: ${m}\n`))
  // The gateway holds a socket per device (plus its own); so does the devices' process.
  const fd = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim()) || 1024
  const devices = Math.min(o.devices ?? 10_000, fd - 500)
  if (devices < (o.devices ?? 10_000)) log(`the file descriptor limit is ${fd}: ${devices} devices`)
  const reps = o.reps ?? 1
  /** @type {any[]} */
  const runs = []
  for (let rep = 1; rep <= reps; rep++) {
    try {
      runs.push(await stormOnce(devices, (m) => log(`[${rep}/${reps}] ${m}`)))
    } catch (err) {
      log(`[${rep}/${reps}] failed: ${/** @type {Error} */ (err).message}`)
      runs.push({ devices, error: /** @type {Error} */ (err).message })
    }
  }
  const ok = runs.filter((r) => !r.error)
  const med = (/** @type {(r: any) => number | undefined} */ f) => { const xs = ok.map(f).filter((x) => x !== undefined); return xs.length ? median(xs) : undefined }
  return {
    devices,
    reps,
    runs,
    medians: {
      backMs: med((r) => r.backMs),
      commandsMs: med((r) => r.commandsMs),
      onlineMs: med((r) => r.onlineMs),
      healthP99: med((r) => r.health.p99),
      healthMax: med((r) => r.health.max)
    },
    // Worst over the runs: a lost message or a device that never came back is not averaged away.
    commandsLost: ok.length === runs.length ? Math.max(0, ...ok.map((r) => r.commandsLost ?? devices)) : devices,
    backFailed: ok.length === runs.length ? Math.max(0, ...ok.map((r) => r.backFailed ?? 0)) : devices
  }
}

/** @param {any} s */
export function renderStorm (s) {
  const lines = [`reconnect storm: ${s.devices} MQTT devices (persistent sessions, will + retained presence), ${s.reps} run(s)`]
  for (const r of s.runs) {
    if (r.error) { lines.push(`  failed: ${r.error}`); continue }
    lines.push(`  back ${r.backMs} ms, commands ${r.commandsMs ?? '-'} ms (${r.commandsLost} lost, ${r.duplicates} duplicates), online ${r.onlineMs ?? '-'} ms, /api/health p99 ${r.health.p99} ms max ${r.health.max} ms, server CPU ${r.serverCpuS} s, RSS ${Math.round(r.rssBefore / 1e6)} -> ${Math.round(r.rssAfter / 1e6)} MB`)
  }
  return lines.join('\n')
}

if (process.argv[2] === '--devices-child') {
  const [url, count] = process.argv.slice(3)
  devicesMain(String(url), Number(count)).catch((err) => { process.stdout.write(JSON.stringify({ error: err.message }) + '\n'); process.exit(1) })
} else if (process.argv[1] === SELF) {
  const argv = process.argv.slice(2)
  const val = (/** @type {string} */ f) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined }
  const s = await measureStorm({ devices: val('--devices') ? Number(val('--devices')) : undefined, reps: val('--reps') ? Number(val('--reps')) : undefined })
  process.stdout.write(JSON.stringify(s, null, 2) + '\n')
  process.stderr.write(renderStorm(s) + '\n')
}
