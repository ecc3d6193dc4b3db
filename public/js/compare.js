// The comparison page: the same room through the /ws hub and through MQTT.js, with
// figures measured here from the frames each pane sends and receives.
//
// Time at the socket, render later: a message's arrival is timed first thing in its
// callback, the callback only records, and everything drawn (feeds, figures, charts,
// progress) is drawn in animation frames, at most a few times a second while a run is
// going. A page that drew each message as it came would measure its own drawing.

import mqtt from '/vendor/mqtt/mqtt.esm.js'
import { el, byId, viaLabel, clockTime } from './dom.js'
import { ensureName } from './name.js'
import { HubSocket } from './hub-socket.js'
import { MqttSplitter, asBytes, byteLength, wsFrameBytes, wsHeaderBytes } from './wire.js'
import { Window, Rate, percentile, fmt, fmtBytes, mean, histogramDelta, histogramPercentile } from './figures.js'
import { drawLatencyChart } from './chart.js'
import { drawTimeline } from './timeline.js'
import { Pacer, startRun, MAX_MESSAGES, MAX_WINDOW, MAX_RATE, MAX_SECONDS } from './run.js'

const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/
/** Round trips kept for the live p50/p95. */
const LATENCY_WINDOW = 200
/** A message not echoed within this long counts as lost. */
const ECHO_TIMEOUT_MS = 10_000
const FEED_MAX = 40
const STATS_EVERY_MS = 2000
/** While a run goes, the page draws at most this often (the progress bar included). */
const RUN_FRAME_MS = 250
/** The gateway's default --msg-rate, until /api/stats says otherwise. */
const DEFAULT_LIMITS = { msgRate: 1000, msgBurst: 2000 }

const roomParam = new URL(location.href).searchParams.get('room')
const room = roomParam !== null && ROOM_RE.test(roomParam) ? roomParam : 'compare'
const topic = `chat/${room}`
const name = ensureName()
const decoder = new TextDecoder()

byId('room-name').textContent = room
byId('chat-link').href = `/?room=${encodeURIComponent(room)}`
document.title = `WebSocket vs MQTT in #${room} · mqtt-fusion`

// ---- drawing, in animation frames -------------------------------------------------

let frameRequested = false
let lastDrawn = 0
let running = false
let chartsDirty = true
/** Parts of the page to redraw at the next frame. */
const dirty = new Set()

/** Asks for a redraw of `part` ('panes', 'charts', 'results', 'progress'...) in a coming frame. */
function invalidate (part = 'panes') {
  dirty.add(part)
  if (frameRequested) return
  frameRequested = true
  // While a run goes, keep the main thread for the sockets: draw a few times a second.
  const wait = running ? RUN_FRAME_MS - (performance.now() - lastDrawn) : 0
  if (wait > 0) setTimeout(() => requestAnimationFrame(onFrame), wait)
  else requestAnimationFrame(onFrame)
}

function onFrame () {
  frameRequested = false
  lastDrawn = performance.now()
  drawNow()
}

/** Draws everything waiting; also called directly when a run ends, so figures are final before "done". */
function drawNow () {
  const parts = new Set(dirty)
  dirty.clear()
  if (parts.has('panes')) { wsPane.render(); mqttPane.render() }
  if (parts.has('progress')) drawProgress()
  if (parts.has('charts') && (!running || chartsDirty)) { drawCharts(); chartsDirty = false }
  if (parts.has('results')) { renderResults(); renderShares(); renderBench() }
  if (parts.has('differ')) renderDiffer()
}

// ---- one door's pane --------------------------------------------------------------

/**
 * One door's pane: what it received, and the figures measured from its own frames.
 * Receiving only records; render() draws.
 */
class Pane {
  /** @param {'ws'|'mqtt'} door */
  constructor (door) {
    this.door = door
    this.statsDoor = door === 'ws' ? 'ws' : 'mqtt-ws'
    this.latency = new Window(LATENCY_WINDOW)
    this.up = new Window(LATENCY_WINDOW)
    this.down = new Window(LATENCY_WINDOW)
    this.rate = new Rate(2000)
    /** text -> { t0, up, done } for messages waiting for their echo, oldest first. */
    this.pending = new Map()
    this.sentMessages = 0
    this.receivedMessages = 0
    this.bytesSent = 0
    this.bytesReceived = 0
    this.reconnects = 0
    this.connectMs = NaN
    /** The gateway's allowance for this connection, mirrored (a new connection starts full). */
    this.pacer = new Pacer(DEFAULT_LIMITS.msgRate, DEFAULT_LIMITS.msgBurst)
    /** Received messages not drawn yet (the newest FEED_MAX). */
    this.feedQueue = []
    /** @type {undefined | ReturnType<typeof summarize>} */
    this.lastRun = undefined
    /** The record of a run going through this door now. */
    this.live = undefined
    this.ui = {
      status: byId(`${door}-status`),
      p50: byId(`${door}-p50`),
      p95: byId(`${door}-p95`),
      gw: byId(`${door}-gw`),
      browser: byId(`${door}-browser`),
      up: byId(`${door}-up`),
      down: byId(`${door}-down`),
      rate: byId(`${door}-rate`),
      burstRate: byId(`${door}-burst-rate`),
      totals: byId(`${door}-totals`),
      feed: byId(`${door}-feed`),
      form: byId(`${door}-form`),
      input: byId(`${door}-input`)
    }
    this.ui.form.addEventListener('submit', (ev) => {
      ev.preventDefault()
      const text = this.ui.input.value
      if (!text.trim()) return
      this.pacer.take()
      if (!this.send(text, (err) => { if (err) this.note(err.message) })) this.note(`${this.door} is not connected`)
      this.ui.input.value = ''
      this.ui.input.focus()
    })
  }

  setStatus (state, text = state) {
    this.ui.status.dataset.state = state
    this.ui.status.textContent = text
  }

  /** A new connection: the gateway gives it a full allowance. */
  connected (limits) {
    this.pacer = new Pacer(limits.msgRate, limits.msgBurst)
  }

  /**
   * Sends `text`; `done(err, echo)` is called once, when it comes back or fails.
   * False (and `done` not called) when the door is not connected.
   */
  send (text, done) {
    if (this.pending.has(text)) { done(new Error('that exact text is already on its way')); return true }
    const entry = { t0: performance.now(), up: NaN, done }
    this.pending.set(text, entry)
    if (!this.transmit(text, entry)) {
      this.pending.delete(text)
      return false
    }
    this.sentMessages++
    return true
  }

  /** Overridden per door: puts the message on the wire; false when it cannot. */
  transmit (_text, _entry) { return false }

  /**
   * A chat message this pane's client received, `at` its arrival (taken first thing in
   * the socket's callback). Records, answers a waiting send, and asks for a frame.
   */
  received (text, at, wire, from, via, ts) {
    this.receivedMessages++
    this.rate.hit(at)
    const entry = this.pending.get(text)
    if (entry) {
      // Own messages only, so up and down describe the same round trip on both doors.
      if (Number.isFinite(wire)) this.down.push(wire)
      this.pending.delete(text)
      const rtt = at - entry.t0
      this.latency.push(rtt)
      entry.done(null, { rtt, up: entry.up, down: wire, text })
    }
    this.feedQueue.push({ from, via, text, ts, mine: Boolean(entry) })
    if (this.feedQueue.length > FEED_MAX) this.feedQueue.shift()
    invalidate('panes')
  }

  /** A sent message frame of `wire` bytes (header included). */
  sentFrame (wire) {
    this.up.push(wire)
  }

  /** Fails what waited longer than the echo timeout (oldest first: the map keeps send order). */
  expire (now = performance.now()) {
    for (const [text, entry] of this.pending) {
      if (now - entry.t0 < ECHO_TIMEOUT_MS) break
      this.pending.delete(text)
      entry.done(new Error('no echo within 10 s'))
    }
  }

  /** Fails everything in flight: the connection it was sent on is gone. */
  failPending (why) {
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const entry of waiting) entry.done(new Error(why))
  }

  /** Fails the oldest message in flight (the hub answered a frame with an error). */
  failOldest (why) {
    const oldest = this.pending.entries().next().value
    if (!oldest) return
    this.pending.delete(oldest[0])
    oldest[1].done(new Error(why))
  }

  note (text) {
    this.ui.feed.prepend(el('li', { className: 'note' }, text))
    while (this.ui.feed.childElementCount > FEED_MAX) this.ui.feed.lastElementChild?.remove()
  }

  #drawFeed () {
    if (this.feedQueue.length === 0) return
    const items = this.feedQueue.splice(0)
    const feed = this.ui.feed
    const fragment = document.createDocumentFragment()
    // Newest first; one clock string per frame: toLocaleTimeString is slow.
    const clocks = new Map()
    for (let i = items.length - 1; i >= 0; i--) {
      const m = items[i]
      const ts = m.ts ?? Date.now()
      const second = Math.floor(ts / 1000)
      if (!clocks.has(second)) clocks.set(second, clockTime(ts))
      fragment.append(el('li', { className: m.mine ? 'mine' : '', testid: `${this.door}-feed-item` },
        el('span', { className: 'from' }, m.from),
        el('span', { className: 'via' }, m.via ? viaLabel(m.via) : ''),
        el('time', {}, clocks.get(second)),
        el('span', { className: 'text' }, m.text)))
    }
    feed.prepend(fragment)
    while (feed.childElementCount > FEED_MAX) feed.lastElementChild?.remove()
  }

  render () {
    this.#drawFeed()
    const r = this.lastRun
    setFigure(this.ui.p50, this.latency.p(50), ' ms', 2)
    setFigure(this.ui.p95, this.latency.p(95), ' ms', 2)
    setFigure(this.ui.gw, r?.gatewayP50 ?? NaN, ' ms', 2)
    setFigure(this.ui.browser, r?.browserP50 ?? NaN, ' ms', 2)
    setFigure(this.ui.up, this.up.mean(), ' B', 0)
    setFigure(this.ui.down, this.down.mean(), ' B', 0)
    setFigure(this.ui.rate, this.rate.perSecond(), '', 0)
    setFigure(this.ui.burstRate, r?.msgPerSec ?? NaN, '', 0)
    this.ui.totals.textContent = `${this.sentMessages} sent, ${this.receivedMessages} received · socket ${fmtBytes(this.bytesSent)} out, ${fmtBytes(this.bytesReceived)} in` +
      (Number.isFinite(this.connectMs) ? ` · connected in ${fmt(this.connectMs)} ms` : '') +
      (this.reconnects ? ` · ${this.reconnects} reconnect${this.reconnects === 1 ? '' : 's'}` : '')
  }
}

function setFigure (node, value, unit, digits = 1) {
  node.dataset.value = Number.isFinite(value) ? String(value) : ''
  node.textContent = Number.isFinite(value) ? `${fmt(value, digits)}${unit}` : '–'
}

/** The gateway's message rate, from /api/stats (the page stays under it). */
let limits = { ...DEFAULT_LIMITS }

// ---- the plain WebSocket pane -------------------------------------------------

const wsPane = new Pane('ws')
const hub = new HubSocket({ room, name: `${name} (ws)`, presence: false })
/** Bytes of the welcome and history frames: what joining costs on this door. */
let wsJoinBytes = 0
/** The pending entry of the frame being sent, so the 'sent' event can give it its size. */
let wsSending

wsPane.transmit = (text, entry) => {
  wsSending = entry
  const ok = hub.send({ type: 'chat', text })
  wsSending = undefined
  return ok
}

hub.addEventListener('sent', (ev) => {
  wsPane.bytesSent += ev.detail.bytes
  if (ev.detail.frame.type === 'chat') {
    wsPane.sentFrame(ev.detail.bytes)
    if (wsSending) wsSending.up = ev.detail.bytes
  }
})
hub.addEventListener('status', (ev) => {
  const { state, delayMs } = ev.detail
  if (state === 'waiting') wsPane.failPending('the /ws connection closed')
  if (state === 'online') wsPane.connected(limits)
  wsPane.setStatus(state, state === 'waiting' ? `retry in ${fmt(delayMs / 1000)} s` : state)
  invalidate('panes')
})
hub.addEventListener('frame', (ev) => {
  const { frame, bytes, at } = ev.detail
  wsPane.bytesReceived += bytes
  if (frame.type === 'message') {
    if (frame.topic === topic) wsPane.received(String(frame.payload), at, bytes, String(frame.from), frame.via, frame.ts)
  } else if (frame.type === 'welcome') {
    wsPane.connectMs = hub.connectMs
    wsPane.reconnects = hub.reconnects
    wsJoinBytes = bytes
  } else if (frame.type === 'history') {
    wsJoinBytes += bytes
    if (frame.messages?.length) wsPane.note(`joined: ${frame.messages.length} earlier messages in the history frame (${fmtBytes(bytes)})`)
    invalidate('differ')
  } else if (frame.type === 'error') {
    wsPane.note(`${frame.code}: ${frame.message}`)
    // Frames are answered in order and chat frames carry no id: the oldest one failed.
    wsPane.failOldest(frame.code)
  }
})

// ---- the MQTT pane --------------------------------------------------------------

const mqttPane = new Pane('mqtt')
const clientId = `compare-${Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('')}`
const willPayload = JSON.stringify({ status: 'offline', name: `${name} (mqtt)`, via: 'mqtt' })
const willTopic = `presence/${clientId}`
/** Sizes of the control packets, measured as they pass. */
const mqttControl = { CONNECT: NaN, CONNACK: NaN, SUBSCRIBE: NaN, SUBACK: NaN }
/** `topic\0payload` -> wire sizes of the PUBLISH packets that carried it, sent and received. */
const sentPublish = new Map()
const receivedPublish = new Map()
/** Sizes kept for messages nobody matches (other senders): at most this many. */
const MAX_KEPT_SIZES = 2 * MAX_MESSAGES
const publishKey = (t, payload) => `${t}\u0000${payload}`
let mqttOpenedAt = NaN

function takeSize (map, key) {
  const list = map.get(key)
  if (!list) return NaN
  const v = list.shift()
  if (list.length === 0) map.delete(key)
  return v
}

function keepSize (map, key, wire) {
  const list = map.get(key)
  if (list) list.push(wire)
  else map.set(key, [wire])
  if (map.size > MAX_KEPT_SIZES) map.delete(map.keys().next().value)
}

const upSplitter = new MqttSplitter((p) => {
  if (p.type === 'PUBLISH') {
    keepSize(sentPublish, publishKey(p.topic, p.payload), p.wire)
    mqttPane.sentFrame(p.wire)
  } else if (p.type in mqttControl) {
    mqttControl[p.type] = p.wire
  }
})
/** How many WebSocket frames, and how many bytes of their headers, each received PUBLISH took. */
const downFrames = new Window(LATENCY_WINDOW)
const downFraming = new Window(LATENCY_WINDOW)
const downSplitter = new MqttSplitter((p) => {
  if (p.type === 'PUBLISH') {
    keepSize(receivedPublish, publishKey(p.topic, p.payload), p.wire)
    downFrames.push(p.frames)
    downFraming.push(p.framing)
  } else if (p.type in mqttControl) mqttControl[p.type] = p.wire
})
/**
 * Frames received but not yet cut into packets. The socket's own listener runs before
 * MQTT.js's, so it only queues them; they are cut after the message is timed.
 */
let downQueue = []

function cutReceived () {
  const frames = downQueue
  downQueue = []
  for (const bytes of frames) downSplitter.push(bytes, wsHeaderBytes(bytes.length, false))
}

/**
 * MQTT.js opens its WebSocket through us, so the page sees each frame it sends and
 * receives (the browser hides the frames themselves, not their sizes).
 */
function createWebsocket (url, protocols) {
  const socket = new WebSocket(url, protocols)
  socket.binaryType = 'arraybuffer'
  upSplitter.reset()
  downSplitter.reset()
  downQueue = []
  mqttOpenedAt = performance.now()
  const send = socket.send.bind(socket)
  socket.send = (data) => {
    // On the wire first; counting it is no part of the round trip.
    send(data)
    const bytes = asBytes(data)
    mqttPane.bytesSent += wsFrameBytes(bytes.length, true)
    upSplitter.push(bytes, wsHeaderBytes(bytes.length, true))
  }
  socket.addEventListener('message', (ev) => {
    const bytes = asBytes(ev.data)
    mqttPane.bytesReceived += wsFrameBytes(bytes.length, false)
    downQueue.push(bytes)
    // Bounded: a flood of frames MQTT.js never turns into messages (none today) is cut now.
    if (downQueue.length > 1000) cutReceived()
  })
  return socket
}

const client = mqtt.connect(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/mqtt`, {
  clientId,
  username: `${name} (mqtt)`,
  protocolVersion: 4,
  clean: true,
  keepalive: 30,
  reconnectPeriod: 1000,
  connectTimeout: 8000,
  // MQTT.js would time its keepalive in a worker made from a blob: URL, which the
  // Content-Security-Policy (script-src 'self') forbids.
  timerVariant: 'native',
  will: { topic: willTopic, payload: willPayload, qos: 0, retain: true },
  createWebsocket
})
let mqttEverConnected = false
mqttPane.setStatus('connecting', 'connecting…')
client.on('connect', () => {
  cutReceived()
  mqttPane.connectMs = performance.now() - mqttOpenedAt
  if (mqttEverConnected) mqttPane.reconnects++
  mqttEverConnected = true
  mqttPane.connected(limits)
  client.subscribe(topic, { qos: 0 }, (err) => {
    cutReceived()
    if (err) { mqttPane.setStatus('offline', 'subscribe failed'); mqttPane.note(String(err.message)); return }
    mqttPane.setStatus('online')
    invalidate('differ')
    invalidate('panes')
  })
})
client.on('reconnect', () => { mqttPane.setStatus('connecting', 'reconnecting…'); invalidate('panes') })
client.on('offline', () => { mqttPane.failPending('the /mqtt connection closed'); mqttPane.setStatus('waiting', 'offline, retrying'); invalidate('panes') })
client.on('error', (err) => mqttPane.note(`error: ${err.message}`))
client.on('message', (t, payload) => {
  const at = performance.now()
  if (t !== topic) return
  const raw = decoder.decode(payload)
  cutReceived()
  const wire = takeSize(receivedPublish, publishKey(t, raw))
  const pending = mqttPane.pending.get(raw)
  if (pending) {
    pending.up = takeSize(sentPublish, publishKey(t, raw))
    mqttPane.received(raw, at, wire, `${name} (mqtt)`, 'mqtt', undefined)
    return
  }
  // MQTT carries no sender: the hub's chat envelope says who; a raw payload does not.
  let text = raw
  let from = '(not in the packet)'
  let via = ''
  let ts
  if (raw.startsWith('{')) {
    try {
      const o = JSON.parse(raw)
      if (o && typeof o.text === 'string') { text = o.text; from = String(o.from ?? from); via = String(o.via ?? ''); ts = o.ts }
    } catch {}
  }
  mqttPane.received(text, at, wire, from, via, ts)
})

mqttPane.transmit = (text) => {
  if (!client.connected) return false
  client.publish(topic, text, { qos: 0, retain: false })
  return true
}

setInterval(() => { wsPane.expire(); mqttPane.expire() }, 1000)

// ---- runs -------------------------------------------------------------------------

const runUi = {
  form: byId('burst-form'),
  mode: byId('run-mode'),
  n: byId('burst-n'),
  window: byId('burst-window'),
  rate: byId('rate-per-sec'),
  seconds: byId('rate-seconds'),
  run: byId('burst-run'),
  stop: byId('burst-stop'),
  progress: byId('burst-progress'),
  status: byId('burst-status'),
  limits: byId('run-limits'),
  results: byId('burst-results'),
  chart: byId('chart'),
  timeline: byId('timeline')
}
const progress = { done: 0, total: 1 }

function setRunStatus (state, text) {
  runUi.status.dataset.state = state
  runUi.status.textContent = text
}

function drawProgress () {
  runUi.progress.max = progress.total
  runUi.progress.value = progress.done
}

function showMode () {
  const mode = runUi.mode.value
  for (const label of runUi.form.querySelectorAll('[data-mode]')) {
    const on = label.dataset.mode === mode
    label.hidden = !on
    // A hidden field must not block the form with its own validity.
    for (const input of label.querySelectorAll('input')) input.disabled = !on
  }
}
runUi.mode.addEventListener('change', showMode)
showMode()

async function fetchStats () {
  try {
    const res = await fetch('/api/stats', { cache: 'no-store' })
    if (!res.ok) return undefined
    const stats = await res.json()
    const l = stats?.limits
    if (l && Number.isFinite(l.msgRate) && Number.isFinite(l.msgBurst)) limits = { msgRate: l.msgRate, msgBurst: l.msgBurst }
    return stats
  } catch {
    return undefined
  }
}

function doorBytes (stats, door) {
  const b = stats?.bytes?.[door] ?? stats?.doors?.[door]
  return b ? { in: Number(b.bytesIn), out: Number(b.bytesOut) } : undefined
}

/** The gateway's own share over a run: its histogram's gain between two /api/stats reads. */
function gatewayShare (before, after, door) {
  const buckets = after?.latency?.buckets
  const d = histogramDelta(before?.latency?.doors?.[door], after?.latency?.doors?.[door])
  if (!Array.isArray(buckets) || !d || d.count === 0) return { p50: NaN, mean: NaN, count: 0 }
  return { p50: histogramPercentile(buckets, d.bins, 50), mean: d.sumMs / d.count, count: d.count }
}

/** Figures of one door's run. */
function summarize (pane, plan, rec, before, after) {
  const rtts = rec.rtt
  const b0 = doorBytes(before, pane.statsDoor)
  const b1 = doorBytes(after, pane.statsDoor)
  const gw = gatewayShare(before, after, pane.statsDoor)
  const p50 = percentile(rtts, 50)
  const seen = rec.echoes
  return {
    door: pane.door,
    mode: rec.mode,
    plan,
    n: rec.planned,
    sent: rec.sent,
    echoed: rtts.length,
    lost: rec.lost,
    stopped: rec.stopped,
    rtts,
    at: rec.at,
    p50,
    p95: percentile(rtts, 95),
    p99: percentile(rtts, 99),
    max: rtts.length ? rtts.reduce((a, b) => Math.max(a, b), 0) : NaN,
    msgPerSec: rtts.length && rec.ms > 0 ? rtts.length / (rec.ms / 1000) : NaN,
    lateMs: rec.lateMs,
    pacedMs: rec.pacedMs,
    up: mean(seen.map((r) => r.up).filter(Number.isFinite)),
    down: mean(seen.map((r) => r.down).filter(Number.isFinite)),
    textBytes: mean(seen.map((r) => byteLength(r.text))),
    serverIn: b0 && b1 && rec.sent ? (b1.in - b0.in) / rec.sent : NaN,
    serverOut: b0 && b1 && rec.sent ? (b1.out - b0.out) / rec.sent : NaN,
    gatewayP50: gw.p50,
    gatewayMean: gw.mean,
    gatewayCount: gw.count,
    browserP50: Number.isFinite(gw.p50) ? Math.max(0, p50 - gw.p50) : NaN
  }
}

/** The plan in the form, clamped to the page's bounds. */
function readPlan () {
  const int = (input, dflt, min, max) => Math.min(max, Math.max(min, Math.floor(Number(input.value) || dflt)))
  if (runUi.mode.value === 'rate') {
    const seconds = int(runUi.seconds, 5, 1, MAX_SECONDS)
    let rate = int(runUi.rate, 200, 1, MAX_RATE)
    // Never more than MAX_MESSAGES per door.
    rate = Math.min(rate, Math.floor(MAX_MESSAGES / seconds))
    return { mode: 'rate', rate, seconds }
  }
  return { mode: 'burst', n: int(runUi.n, 200, 1, MAX_MESSAGES), window: int(runUi.window, 10, 1, MAX_WINDOW) }
}

/** @type {undefined | { stop: () => void }} */
let current
let stopAsked = false

runUi.stop.addEventListener('click', () => {
  stopAsked = true
  current?.stop()
})

runUi.form.addEventListener('submit', async (ev) => {
  ev.preventDefault()
  if (running) return
  const plan = readPlan()
  running = true
  stopAsked = false
  runUi.run.disabled = true
  runUi.stop.disabled = false
  // The state changes with the run number, at once: nobody may read the last run's "done" as this one's.
  runUi.status.dataset.run = String(Number(runUi.status.dataset.run ?? 0) + 1)
  setRunStatus('running', 'Reading the gateway\'s counters…')
  const perDoor = plan.mode === 'burst' ? plan.n : plan.rate * plan.seconds
  progress.total = 2 * perDoor
  progress.done = 0
  invalidate('progress')
  const tag = Math.random().toString(36).slice(2, 8)
  // "The last run" is this one from now on: the charts show it as it grows.
  wsPane.lastRun = mqttPane.lastRun = undefined
  const what = plan.mode === 'burst'
    ? `${plan.n} messages, ${plan.window} in flight at most`
    : `${plan.rate} messages a second for ${plan.seconds} s`
  try {
    let offset = 0
    for (const pane of [wsPane, mqttPane]) {
      if (stopAsked) break
      const before = await fetchStats()
      pane.pacer.retune(limits.msgRate, limits.msgBurst)
      const allowed = limits.msgRate > 0 ? Math.floor(limits.msgRate * 0.9) : Infinity
      const note = plan.mode === 'rate' && plan.rate > allowed ? ` (the gateway allows ${limits.msgRate} a second per connection: sends wait for it)` : ''
      setRunStatus('running', `Sending ${what} through ${pane.door === 'ws' ? '/ws' : '/mqtt'}…${note}`)
      const run = startRun(pane, plan, {
        pacer: pane.pacer,
        tag,
        onProgress: (settled) => { progress.done = offset + settled; invalidate('progress') }
      })
      current = run
      pane.live = run.record
      // The live charts: the records grow while the run goes; drawn a few times a second.
      const live = setInterval(() => { chartsDirty = true; invalidate('charts') }, 1000)
      const rec = await run.done
      clearInterval(live)
      current = undefined
      const after = await fetchStats()
      pane.lastRun = summarize(pane, plan, rec, before, after)
      pane.live = undefined
      offset += perDoor
      chartsDirty = true
      invalidate('results')
      invalidate('charts')
    }
    // Figures first, then "done": whoever waits for "done" reads final figures.
    running = false
    invalidate('panes')
    invalidate('differ')
    drawNow()
    renderStats(await fetchStats())
    const runs = [wsPane.lastRun, mqttPane.lastRun].filter(Boolean)
    const lost = runs.reduce((n, r) => n + r.lost, 0)
    const late = Math.max(0, ...runs.map((r) => r.lateMs))
    const paced = Math.max(0, ...runs.map((r) => r.pacedMs))
    const how = (plan.mode === 'rate' ? ` Sends were at most ${fmt(late, 1)} ms behind their schedule.` : '') +
      (paced > 0 ? ` Up to ${fmt(paced / 1000, 1)} s per door went to waiting for the gateway's message rate.` : '')
    setRunStatus(lost ? 'failed' : 'done', stopAsked
      ? 'Stopped; the figures cover what was sent.'
      : lost
        ? `Done, but ${lost} message${lost === 1 ? '' : 's'} never came back.${how}`
        : `Done: ${what} through each door.${how}`)
  } catch (err) {
    setRunStatus('failed', `The run stopped: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    running = false
    current = undefined
    runUi.run.disabled = false
    runUi.stop.disabled = true
    invalidate('differ')
  }
})

function renderLimits () {
  runUi.limits.textContent = limits.msgRate > 0
    ? `At most ${MAX_MESSAGES.toLocaleString('en-US')} messages per door. This gateway allows ${limits.msgRate.toLocaleString('en-US')} messages a second per connection (bursts of ${limits.msgBurst.toLocaleString('en-US')}); the page stays at 90% of that, and says so when a run waits for it.`
    : `At most ${MAX_MESSAGES.toLocaleString('en-US')} messages per door. This gateway sets no message rate.`
}

function renderResults () {
  const rows = [wsPane, mqttPane].filter((p) => p.lastRun).map((p) => {
    const r = p.lastRun
    const cell = (text, testid, value) => el('td', { testid, 'data-value': value === undefined ? undefined : String(value) }, text)
    return el('tr', { testid: `burst-row-${r.door}` },
      el('th', { scope: 'row' }, r.door === 'ws' ? 'WebSocket /ws' : 'MQTT /mqtt'),
      cell(String(r.sent)), cell(r.lost ? `${r.echoed} (${r.lost} lost)` : String(r.echoed)),
      cell(`${fmt(r.p50, 2)} ms`, `burst-${r.door}-p50`, r.p50), cell(`${fmt(r.p95, 2)} ms`, `burst-${r.door}-p95`, r.p95),
      cell(`${fmt(r.p99, 2)} ms`, `burst-${r.door}-p99`, r.p99), cell(`${fmt(r.max, 1)} ms`),
      cell(fmt(r.msgPerSec, 0)),
      cell(`${fmt(r.gatewayP50, 3)} ms (${fmt(r.gatewayMean, 3)})`, `burst-${r.door}-gw`, r.gatewayP50),
      cell(`${fmt(r.browserP50, 2)} ms`, `burst-${r.door}-browser`, r.browserP50),
      cell(`${fmt(r.up, 1)} B`), cell(`${fmt(r.down, 1)} B`),
      cell(`${fmt(r.serverIn, 1)} / ${fmt(r.serverOut, 1)} B`))
  })
  runUi.results.replaceChildren(...rows)
}

/** Both doors' median round trip as one bar each: the gateway's share, then the rest. */
function renderShares () {
  const runs = [wsPane, mqttPane].map((p) => p.lastRun).filter(Boolean)
  const box = byId('shares')
  if (runs.length === 0) { box.replaceChildren(el('p', { className: 'hint' }, 'Run a burst to see the split.')); return }
  const widest = Math.max(...runs.map((r) => r.p50).filter(Number.isFinite), 0.001)
  box.replaceChildren(...runs.map((r) => {
    const gw = Number.isFinite(r.gatewayP50) ? Math.min(r.gatewayP50, r.p50) : 0
    const bar = el('div', { className: `share-bar share-${r.door}`, role: 'img', 'aria-label': `${fmt(r.p50, 2)} ms in all` },
      el('span', { className: 'share-gw' }), el('span', { className: 'share-rest' }))
    // Widths through the CSSOM: the Content-Security-Policy forbids style attributes, not this.
    bar.children[0].style.width = `${(gw / widest) * 100}%`
    bar.children[1].style.width = `${(Math.max(0, r.p50 - gw) / widest) * 100}%`
    const words = Number.isFinite(r.gatewayP50)
      ? `p50 ${fmt(r.p50, 2)} ms = gateway ${fmt(r.gatewayP50, 3)} ms (mean ${fmt(r.gatewayMean, 3)} ms over ${r.gatewayCount} messages it read on ${r.door === 'ws' ? '/ws' : '/mqtt'}) + browser ${fmt(r.browserP50, 2)} ms` +
        (r.gatewayP50 > r.p50 ? ' (the gateway\'s last copy of a message, to the other pane, left after this pane\'s echo)' : '')
      : `p50 ${fmt(r.p50, 2)} ms; the gateway's share is not available (no latency in /api/stats)`
    return el('div', { className: 'share-row', testid: `share-${r.door}` },
      el('span', { className: 'share-door' }, r.door === 'ws' ? 'WebSocket /ws' : 'MQTT /mqtt'),
      bar,
      el('span', { className: 'share-words' }, words))
  }))
}

function drawCharts () {
  const style = getComputedStyle(document.documentElement)
  const wsColor = style.getPropertyValue('--ws-color').trim() || '#1f6feb'
  const mqttColor = style.getPropertyValue('--mqtt-color').trim() || '#d97706'
  // A door still running shows what it has recorded so far.
  const ws = wsPane.lastRun ?? (wsPane.live && { rtts: wsPane.live.rtt, at: wsPane.live.at })
  const mq = mqttPane.lastRun ?? (mqttPane.live && { rtts: mqttPane.live.rtt, at: mqttPane.live.at })
  drawLatencyChart(runUi.chart, [
    { label: 'WebSocket', color: wsColor, samples: ws?.rtts ?? [] },
    { label: 'MQTT', color: mqttColor, samples: mq?.rtts ?? [] }
  ])
  drawTimeline(runUi.timeline, [
    { label: 'WebSocket', color: wsColor, at: ws?.at ?? [], rtt: ws?.rtts ?? [] },
    { label: 'MQTT', color: mqttColor, at: mq?.at ?? [], rtt: mq?.rtts ?? [] }
  ])
}

// ---- what this machine can do (npm run bench) ---------------------------------------

/** @type {undefined | null | Record<string, any>} undefined: loading; null: none */
let bench

async function loadBench () {
  try {
    const res = await fetch('/api/bench', { cache: 'no-store' })
    bench = res.ok ? await res.json() : null
  } catch {
    bench = null
  }
  invalidate('results')
}

function renderBench () {
  const source = byId('bench-source')
  const doors = [['ws', 'WebSocket /ws', wsPane], ['mqtt-ws', 'MQTT /mqtt', mqttPane], ['mqtt', 'MQTT/TCP (no browser can open it)', undefined]]
  byId('bench-body').replaceChildren(...doors.map(([door, label, pane]) => {
    const b = bench?.doors?.[door]
    const r = pane?.lastRun
    return el('tr', { testid: `bench-row-${door}` },
      el('th', { scope: 'row' }, label),
      el('td', { testid: `bench-${door}-fanout` }, b?.fanout ? `${fmt(b.fanout.msgPerSec, 0)} (p99 ${fmt(b.fanout.p99, 1)} ms)` : '–'),
      el('td', { testid: `bench-${door}-p99` }, b?.latency ? `${fmt(b.latency.p99, 2)} ms (p50 ${fmt(b.latency.p50, 2)} ms)` : '–'),
      el('td', {}, r ? fmt(r.msgPerSec, 0) : pane ? 'run to measure' : '–'),
      el('td', {}, r ? `${fmt(r.p99, 2)} ms` : pane ? 'run to measure' : '–'))
  }))
  if (bench === undefined) return
  if (bench === null) { source.textContent = 'No bench results on this gateway (GET /api/bench): run npm run bench where it is installed.'; return }
  const m = bench.machine ?? {}
  const f = bench.fanout ?? {}
  source.textContent = `From ${bench.source} (${bench.command ?? 'npm run bench'}, ${bench.date ? new Date(bench.date).toLocaleString() : 'undated'}; ${m.cpus ?? '?'} cores, ${m.cpuModel ?? 'unknown CPU'}, Node ${m.node ?? '?'}): fan-out is one Node publisher to ${f.subscribers ?? 100} Node subscribers with at most ${f.window ?? 64} messages in flight; the p99 is at a steady 10,000 deliveries a second. This page's figures are its own last run: one sender that is also its only subscriber besides the other pane.`
}

// ---- what differs -----------------------------------------------------------------

function bytesCell (r, pane) {
  if (r) return `${fmt(r.up, 0)} B up, ${fmt(r.down, 0)} B down for ${fmt(r.textBytes, 0)} B of text: ${fmt(r.up + r.down - 2 * r.textBytes, 0)} B of overhead per round trip`
  const up = pane.up.mean()
  const down = pane.down.mean()
  return Number.isFinite(up) || Number.isFinite(down) ? `${fmt(up, 0)} B up, ${fmt(down, 0)} B down (live window)` : 'run a burst to measure'
}

function latencyCell (r) {
  if (!r) return 'run a burst to measure'
  const gw = Number.isFinite(r.gatewayP50) ? `; the gateway's share p50 ${fmt(r.gatewayP50, 3)} ms` : ''
  return `p50 ${fmt(r.p50, 2)} ms, p95 ${fmt(r.p95, 2)} ms, ${fmt(r.msgPerSec, 0)} msg/s over ${r.echoed} messages${gw}`
}

function renderDiffer () {
  cutReceived()
  const ws = wsPane.lastRun
  const mq = mqttPane.lastRun
  const willBytes = 2 + byteLength(willTopic) + 2 + byteLength(willPayload)
  const rows = [
    ['Bytes per message', `${bytesCell(ws, wsPane)}. One WebSocket frame per message each way.`,
      `${bytesCell(mq, mqttPane)}.` + (downFrames.length ? ` The gateway wrote each PUBLISH to this pane in ${fmt(downFrames.mean(), 1)} WebSocket frames (${fmt(downFraming.mean(), 0)} B of frame headers).` : '')],
    ['Round trip, last run', latencyCell(ws), latencyCell(mq)],
    ['Joining', `welcome after ${fmt(wsPane.connectMs)} ms; welcome and history frames ${fmtBytes(wsJoinBytes)}`,
      `CONNACK after ${fmt(mqttPane.connectMs)} ms; CONNECT ${fmt(mqttControl.CONNECT, 0)} B, CONNACK ${fmt(mqttControl.CONNACK, 0)} B, SUBSCRIBE ${fmt(mqttControl.SUBSCRIBE, 0)} B, SUBACK ${fmt(mqttControl.SUBACK, 0)} B`],
    ['Topics and wildcards', `The room (${topic}) comes from the URL; a JSON "subscribe" frame takes any MQTT filter with + and #.`,
      `SUBSCRIBE to ${topic}; filters with + and # are native.`],
    ['Sender and time', 'Every message frame says from, via, ts and seq.',
      'The packet has none: the payload must say (the hub\'s chat envelope does; a raw payload does not).'],
    ['QoS', 'A "publish" frame sets qos 0 or 1 inside the broker; to the page it is one TCP stream with no per-message acknowledgement.',
      'QoS 0, 1 or 2 per message and per subscription; this pane uses 0, so no PUBACK travels.'],
    ['Retained', 'A "publish" frame with retain:true; a later "subscribe" gets the last one.',
      'The retain flag; the broker sends the last retained message to each new subscriber.'],
    ['Last will', 'None: the gateway publishes presence/<id> offline when the socket closes.',
      `In CONNECT: this pane registered ${willTopic}, ${willBytes} B of its CONNECT.`],
    ['Reconnect', `This page retries with backoff and asks ?since=<seq>, so the hub replays exactly what was missed (${wsPane.reconnects} reconnect${wsPane.reconnects === 1 ? '' : 's'} so far).`,
      `MQTT.js retries every 1 s by itself; missed messages come back only with clean:false and QoS 1 (${mqttPane.reconnects} reconnect${mqttPane.reconnects === 1 ? '' : 's'} so far).`]
  ]
  byId('differ-body').replaceChildren(...rows.map(([what, a, b], i) => el('tr', { testid: `differ-row-${i}` },
    el('th', { scope: 'row' }, what), el('td', { 'data-label': 'Plain WebSocket hub' }, a), el('td', { 'data-label': 'MQTT over WebSocket' }, b))))
}

// ---- server counters --------------------------------------------------------------

function renderStats (stats) {
  const body = byId('server-body')
  const uptime = byId('server-uptime')
  if (!stats) { uptime.textContent = '(unavailable)'; return }
  uptime.textContent = `up ${fmt(Number(stats.uptime), 0)} s`
  renderLimits()
  const doors = stats.doors ?? {}
  body.replaceChildren(...Object.keys(doors).map((door) => {
    const d = doors[door]
    const b = doorBytes(stats, door)
    return el('tr', { testid: `server-row-${door}`, className: door === 'ws' || door === 'mqtt-ws' ? 'here' : '' },
      el('th', { scope: 'row' }, door),
      el('td', {}, String(d.connections ?? '–')),
      el('td', {}, String(d.messagesIn ?? '–')),
      el('td', {}, String(d.messagesOut ?? '–')),
      el('td', { testid: `server-${door}-bytes-in` }, b ? fmtBytes(b.in) : '–'),
      el('td', { testid: `server-${door}-bytes-out` }, b ? fmtBytes(b.out) : '–'))
  }))
}

async function pollStats () {
  // A run reads the counters itself, before and after each door; polling would only add work.
  if (!document.hidden && !running) renderStats(await fetchStats())
  setTimeout(pollStats, STATS_EVERY_MS)
}

// ---- start ----------------------------------------------------------------------------

// "msg/s now" decays when nothing arrives.
setInterval(() => invalidate('panes'), 1000)

new ResizeObserver(() => { chartsDirty = true; invalidate('charts') }).observe(runUi.chart)
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { chartsDirty = true; invalidate('charts') })
addEventListener('pagehide', () => { hub.close(); client.end(true) })

hub.connect()
renderLimits()
invalidate('differ')
invalidate('charts')
invalidate('results')
void loadBench()
void pollStats()
