// The comparison page: the same room through the /ws hub and through MQTT.js,
// with figures measured here from the frames each pane sends and receives.

import mqtt from '/vendor/mqtt/mqtt.esm.js'
import { el, byId, viaLabel, clockTime } from './dom.js'
import { ensureName } from './name.js'
import { HubSocket } from './hub-socket.js'
import { MqttSplitter, asBytes, byteLength, wsFrameBytes, wsHeaderBytes } from './wire.js'
import { Window, Rate, percentile, fmt, fmtBytes, mean } from './figures.js'
import { drawLatencyChart } from './chart.js'

const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/
/** Round trips kept for the live p50/p95. */
const LATENCY_WINDOW = 200
/** A message not echoed within this long counts as lost. */
const ECHO_TIMEOUT_MS = 10_000
const FEED_MAX = 40
const STATS_EVERY_MS = 2000
const MAX_BURST = 2000

const roomParam = new URL(location.href).searchParams.get('room')
const room = roomParam !== null && ROOM_RE.test(roomParam) ? roomParam : 'compare'
const topic = `chat/${room}`
const name = ensureName()
const decoder = new TextDecoder()

// Declared before the panes: they schedule a render while they are built.
let renderTimer = 0
/** Coalesces figure updates: a burst would otherwise redraw hundreds of times a second. */
function schedule () {
  if (renderTimer) return
  renderTimer = setTimeout(() => {
    renderTimer = 0
    wsPane.render()
    mqttPane.render()
  }, 100)
}

byId('room-name').textContent = room
byId('chat-link').href = `/?room=${encodeURIComponent(room)}`
document.title = `WebSocket vs MQTT in #${room} · mqtt-fusion`

/**
 * One door's pane: what it received, and the figures measured from its own frames.
 */
class Pane {
  /** @param {'ws'|'mqtt'} door */
  constructor (door) {
    this.door = door
    this.latency = new Window(LATENCY_WINDOW)
    this.up = new Window(LATENCY_WINDOW)
    this.down = new Window(LATENCY_WINDOW)
    this.rate = new Rate(2000)
    /** text -> { t0, resolve, reject, timer } for messages waiting for their echo. */
    this.pending = new Map()
    this.sentMessages = 0
    this.receivedMessages = 0
    this.bytesSent = 0
    this.bytesReceived = 0
    this.reconnects = 0
    this.connectMs = NaN
    /** @type {undefined | ReturnType<typeof summarize>} */
    this.lastBurst = undefined
    this.ui = {
      status: byId(`${door}-status`),
      p50: byId(`${door}-p50`),
      p95: byId(`${door}-p95`),
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
      this.send(text).catch((err) => this.note(err.message))
      this.ui.input.value = ''
      this.ui.input.focus()
    })
  }

  setStatus (state, text = state) {
    this.ui.status.dataset.state = state
    this.ui.status.textContent = text
    schedule()
  }

  /** Sends `text` and resolves with { rtt, up, down, textBytes } once it comes back. */
  send (text) {
    if (this.pending.has(text)) return Promise.reject(new Error('that exact text is already on its way'))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(text)
        reject(new Error('no echo within 10 s'))
      }, ECHO_TIMEOUT_MS)
      const entry = { t0: performance.now(), resolve, reject, timer, up: NaN }
      this.pending.set(text, entry)
      try {
        if (!this.transmit(text, entry)) throw new Error(`${this.door} is not connected`)
        this.sentMessages++
      } catch (err) {
        clearTimeout(timer)
        this.pending.delete(text)
        reject(err)
      }
    })
  }

  /** Overridden per door: puts the message on the wire; false when it cannot. */
  transmit (_text, _entry) { return false }

  /** Called for every chat message the pane's client receives. */
  received ({ text, from, via, wire, ts }) {
    const now = performance.now()
    this.receivedMessages++
    this.rate.hit(now)
    const entry = this.pending.get(text)
    if (entry) {
      // Own messages only, so up and down describe the same round trip on both doors.
      if (Number.isFinite(wire)) this.down.push(wire)
      this.pending.delete(text)
      clearTimeout(entry.timer)
      const rtt = now - entry.t0
      this.latency.push(rtt)
      entry.resolve({ rtt, up: entry.up, down: wire, textBytes: byteLength(text) })
    }
    this.feed(from, via, text, ts, Boolean(entry))
    schedule()
  }

  /** A sent message frame of `wire` bytes (header included). */
  sentFrame (wire) {
    this.up.push(wire)
    schedule()
  }

  /** Rejects everything in flight: the connection it was sent on is gone. */
  failPending (why) {
    for (const [text, entry] of this.pending) {
      clearTimeout(entry.timer)
      entry.reject(new Error(why))
      this.pending.delete(text)
    }
  }

  feed (from, via, text, ts, mine) {
    const feed = this.ui.feed
    feed.prepend(el('li', { className: mine ? 'mine' : '', testid: `${this.door}-feed-item` },
      el('span', { className: 'from' }, from),
      el('span', { className: 'via' }, via ? viaLabel(via) : ''),
      el('time', {}, clockTime(ts ?? Date.now())),
      el('span', { className: 'text' }, text)))
    while (feed.childElementCount > FEED_MAX) feed.lastElementChild?.remove()
  }

  note (text) {
    this.ui.feed.prepend(el('li', { className: 'note' }, text))
  }

  render () {
    const setFigure = (node, value, unit, digits = 1) => {
      node.dataset.value = Number.isFinite(value) ? String(value) : ''
      node.textContent = Number.isFinite(value) ? `${fmt(value, digits)}${unit}` : '–'
    }
    setFigure(this.ui.p50, this.latency.p(50), ' ms', 2)
    setFigure(this.ui.p95, this.latency.p(95), ' ms', 2)
    setFigure(this.ui.up, this.up.mean(), ' B', 0)
    setFigure(this.ui.down, this.down.mean(), ' B', 0)
    setFigure(this.ui.rate, this.rate.perSecond(), '', 0)
    setFigure(this.ui.burstRate, this.lastBurst?.msgPerSec ?? NaN, '', 0)
    this.ui.totals.textContent = `${this.sentMessages} sent, ${this.receivedMessages} received · socket ${fmtBytes(this.bytesSent)} out, ${fmtBytes(this.bytesReceived)} in` +
      (Number.isFinite(this.connectMs) ? ` · connected in ${fmt(this.connectMs)} ms` : '') +
      (this.reconnects ? ` · ${this.reconnects} reconnect${this.reconnects === 1 ? '' : 's'}` : '')
  }
}

// ---- the plain WebSocket pane -------------------------------------------------

const wsPane = new Pane('ws')
const hub = new HubSocket({ room, name: `${name} (ws)`, presence: false })
/** Bytes of the welcome and history frames: what joining costs on this door. */
let wsJoinBytes = 0

wsPane.transmit = (text, entry) => {
  const frame = { type: 'chat', text }
  if (!hub.send(frame)) return false
  entry.up = wsFrameBytes(byteLength(JSON.stringify(frame)), true)
  return true
}

hub.addEventListener('sent', (ev) => {
  wsPane.bytesSent += ev.detail.bytes
  if (ev.detail.frame.type === 'chat') wsPane.sentFrame(ev.detail.bytes)
})
hub.addEventListener('status', (ev) => {
  const { state, delayMs } = ev.detail
  if (state === 'waiting') wsPane.failPending('the /ws connection closed')
  wsPane.setStatus(state, state === 'waiting' ? `retry in ${fmt(delayMs / 1000)} s` : state)
})
hub.addEventListener('frame', (ev) => {
  const { frame, bytes } = ev.detail
  wsPane.bytesReceived += bytes
  if (frame.type === 'welcome') {
    wsPane.connectMs = hub.connectMs
    wsPane.reconnects = hub.reconnects
    wsJoinBytes = bytes
  } else if (frame.type === 'history') {
    wsJoinBytes += bytes
    if (frame.messages?.length) wsPane.note(`joined: ${frame.messages.length} earlier messages in the history frame (${fmtBytes(bytes)})`)
    renderDiffer()
  } else if (frame.type === 'message' && frame.topic === topic) {
    wsPane.received({ text: String(frame.payload), from: String(frame.from), via: frame.via, wire: bytes, ts: frame.ts })
  } else if (frame.type === 'error') {
    wsPane.note(`${frame.code}: ${frame.message}`)
    // Frames are answered in order and burst frames carry no id: the oldest one failed.
    const oldest = wsPane.pending.entries().next().value
    if (oldest) {
      const [text, entry] = oldest
      wsPane.pending.delete(text)
      clearTimeout(entry.timer)
      entry.reject(new Error(frame.code))
    }
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
  // Messages nobody matches (other senders) must not pile up.
  if (map.size > 4 * MAX_BURST) map.delete(map.keys().next().value)
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
  }
  else if (p.type in mqttControl) mqttControl[p.type] = p.wire
})

/**
 * MQTT.js opens its WebSocket through us, so the page sees each frame it sends and
 * receives (the browser hides the frames themselves, not their sizes).
 */
function createWebsocket (url, protocols) {
  const socket = new WebSocket(url, protocols)
  socket.binaryType = 'arraybuffer'
  upSplitter.reset()
  downSplitter.reset()
  mqttOpenedAt = performance.now()
  const send = socket.send.bind(socket)
  socket.send = (data) => {
    const bytes = asBytes(data)
    mqttPane.bytesSent += wsFrameBytes(bytes.length, true)
    upSplitter.push(bytes, wsHeaderBytes(bytes.length, true))
    send(data)
  }
  socket.addEventListener('message', (ev) => {
    const bytes = asBytes(ev.data)
    mqttPane.bytesReceived += wsFrameBytes(bytes.length, false)
    downSplitter.push(bytes, wsHeaderBytes(bytes.length, false))
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
  mqttPane.connectMs = performance.now() - mqttOpenedAt
  if (mqttEverConnected) mqttPane.reconnects++
  mqttEverConnected = true
  client.subscribe(topic, { qos: 0 }, (err) => {
    if (err) { mqttPane.setStatus('offline', 'subscribe failed'); mqttPane.note(String(err.message)); return }
    mqttPane.setStatus('online')
    renderDiffer()
  })
})
client.on('reconnect', () => mqttPane.setStatus('connecting', 'reconnecting…'))
client.on('offline', () => { mqttPane.failPending('the /mqtt connection closed'); mqttPane.setStatus('waiting', 'offline, retrying') })
client.on('error', (err) => mqttPane.note(`error: ${err.message}`))
client.on('message', (t, payload) => {
  if (t !== topic) return
  const raw = decoder.decode(payload)
  const wire = takeSize(receivedPublish, publishKey(t, raw))
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
  const pending = mqttPane.pending.get(raw)
  if (pending) pending.up = takeSize(sentPublish, publishKey(t, raw))
  mqttPane.received({ text: pending ? raw : text, from: pending ? `${name} (mqtt)` : from, via: pending ? 'mqtt' : via, wire, ts })
})

mqttPane.transmit = (text) => {
  if (!client.connected) return false
  client.publish(topic, text, { qos: 0, retain: false })
  return true
}

// ---- the burst ------------------------------------------------------------------

const burstUi = {
  form: byId('burst-form'),
  n: byId('burst-n'),
  window: byId('burst-window'),
  run: byId('burst-run'),
  progress: byId('burst-progress'),
  status: byId('burst-status'),
  results: byId('burst-results'),
  chart: byId('chart')
}

function setBurstStatus (state, text) {
  burstUi.status.dataset.state = state
  burstUi.status.textContent = text
}

async function fetchStats () {
  try {
    const res = await fetch('/api/stats', { cache: 'no-store' })
    return res.ok ? await res.json() : undefined
  } catch {
    return undefined
  }
}

function doorBytes (stats, door) {
  const b = stats?.bytes?.[door] ?? stats?.doors?.[door]
  return b ? { in: Number(b.bytesIn), out: Number(b.bytesOut) } : undefined
}

/** Sends n messages through one pane, at most `inFlight` unanswered at a time. */
function burst (pane, n, inFlight, tag, onProgress) {
  return new Promise((resolve) => {
    const results = []
    let lost = 0
    let next = 0
    let settled = 0
    const t0 = performance.now()
    let tEnd = t0
    const pump = () => {
      while (next < n && next - settled < inFlight) {
        next++
        // Texts of one length through both doors, so their payloads weigh the same.
        pane.send(`burst ${next}/${n} ${tag}-${pane.door === 'ws' ? 'w' : 'm'}`)
          .then((r) => { results.push(r); tEnd = performance.now() }, () => { lost++ })
          .finally(() => {
            settled++
            onProgress(settled)
            if (settled === n) resolve({ results, lost, ms: tEnd - t0 })
            else pump()
          })
      }
    }
    pump()
  })
}

function summarize (door, n, run, before, after) {
  const rtts = run.results.map((r) => r.rtt)
  const b0 = doorBytes(before, door === 'ws' ? 'ws' : 'mqtt-ws')
  const b1 = doorBytes(after, door === 'ws' ? 'ws' : 'mqtt-ws')
  return {
    door,
    n,
    echoed: run.results.length,
    lost: run.lost,
    rtts,
    p50: percentile(rtts, 50),
    p95: percentile(rtts, 95),
    max: rtts.length ? Math.max(...rtts) : NaN,
    msgPerSec: run.results.length && run.ms > 0 ? run.results.length / (run.ms / 1000) : NaN,
    up: mean(run.results.map((r) => r.up).filter(Number.isFinite)),
    down: mean(run.results.map((r) => r.down).filter(Number.isFinite)),
    textBytes: mean(run.results.map((r) => r.textBytes)),
    serverIn: b0 && b1 ? (b1.in - b0.in) / n : NaN,
    serverOut: b0 && b1 ? (b1.out - b0.out) / n : NaN
  }
}

function renderResults () {
  const rows = [wsPane, mqttPane].filter((p) => p.lastBurst).map((p) => {
    const r = p.lastBurst
    const cell = (text, testid) => el('td', { testid }, text)
    return el('tr', { testid: `burst-row-${r.door}` },
      el('th', { scope: 'row' }, r.door === 'ws' ? 'WebSocket /ws' : 'MQTT /mqtt'),
      cell(String(r.n)), cell(r.lost ? `${r.echoed} (${r.lost} lost)` : String(r.echoed)),
      cell(`${fmt(r.p50, 2)} ms`), cell(`${fmt(r.p95, 2)} ms`), cell(`${fmt(r.max, 1)} ms`),
      cell(fmt(r.msgPerSec, 0)), cell(`${fmt(r.up, 1)} B`), cell(`${fmt(r.down, 1)} B`),
      cell(`${fmt(r.serverIn, 1)} / ${fmt(r.serverOut, 1)} B`))
  })
  burstUi.results.replaceChildren(...rows)
}

function drawChart () {
  const style = getComputedStyle(document.documentElement)
  drawLatencyChart(burstUi.chart, [
    { label: 'WebSocket', color: style.getPropertyValue('--ws-color').trim() || '#1f6feb', samples: wsPane.lastBurst?.rtts ?? [] },
    { label: 'MQTT', color: style.getPropertyValue('--mqtt-color').trim() || '#d97706', samples: mqttPane.lastBurst?.rtts ?? [] }
  ])
}

let bursting = false
burstUi.form.addEventListener('submit', async (ev) => {
  ev.preventDefault()
  if (bursting) return
  const n = Math.min(MAX_BURST, Math.max(1, Math.floor(Number(burstUi.n.value) || 200)))
  const inFlight = Math.min(100, Math.max(1, Math.floor(Number(burstUi.window.value) || 10)))
  bursting = true
  burstUi.run.disabled = true
  burstUi.progress.max = 2 * n
  burstUi.progress.value = 0
  const tag = Math.random().toString(36).slice(2, 8)
  try {
    let offset = 0
    for (const pane of [wsPane, mqttPane]) {
      setBurstStatus('running', `Sending ${n} messages through ${pane.door === 'ws' ? '/ws' : '/mqtt'}…`)
      const before = await fetchStats()
      const run = await burst(pane, n, inFlight, tag, (done) => { burstUi.progress.value = offset + done })
      const after = await fetchStats()
      pane.lastBurst = summarize(pane.door, n, run, before, after)
      offset += n
      renderResults()
      drawChart()
      schedule()
    }
    // Figures first, then "done": whoever waits for "done" reads final figures.
    wsPane.render()
    mqttPane.render()
    renderDiffer()
    renderStats(await fetchStats())
    const lost = wsPane.lastBurst.lost + mqttPane.lastBurst.lost
    setBurstStatus(lost ? 'failed' : 'done', lost
      ? `Done, but ${lost} message${lost === 1 ? '' : 's'} never came back.`
      : `Done: ${n} messages through each door, ${inFlight} in flight at most.`)
  } catch (err) {
    setBurstStatus('failed', `The burst stopped: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    bursting = false
    burstUi.run.disabled = false
    renderDiffer()
  }
})

// ---- what differs -----------------------------------------------------------------

function bytesCell (r, pane) {
  if (r) return `${fmt(r.up, 0)} B up, ${fmt(r.down, 0)} B down for ${fmt(r.textBytes, 0)} B of text: ${fmt(r.up + r.down - 2 * r.textBytes, 0)} B of overhead per round trip`
  const up = pane.up.mean()
  const down = pane.down.mean()
  return Number.isFinite(up) || Number.isFinite(down) ? `${fmt(up, 0)} B up, ${fmt(down, 0)} B down (live window)` : 'run a burst to measure'
}

function latencyCell (r) {
  return r ? `p50 ${fmt(r.p50, 2)} ms, p95 ${fmt(r.p95, 2)} ms, ${fmt(r.msgPerSec, 0)} msg/s over ${r.n} messages` : 'run a burst to measure'
}

function renderDiffer () {
  const ws = wsPane.lastBurst
  const mq = mqttPane.lastBurst
  const willBytes = 2 + byteLength(willTopic) + 2 + byteLength(willPayload)
  const rows = [
    ['Bytes per message', `${bytesCell(ws, wsPane)}. One WebSocket frame per message each way.`,
      `${bytesCell(mq, mqttPane)}.` + (downFrames.length ? ` The gateway wrote each PUBLISH to this pane in ${fmt(downFrames.mean(), 1)} WebSocket frames (${fmt(downFraming.mean(), 0)} B of frame headers).` : '')],
    ['Round trip, last burst', latencyCell(ws), latencyCell(mq)],
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
  if (!document.hidden) renderStats(await fetchStats())
  setTimeout(pollStats, STATS_EVERY_MS)
}

// ---- rendering ----------------------------------------------------------------------

// "msg/s now" decays when nothing arrives.
setInterval(schedule, 1000)

new ResizeObserver(() => drawChart()).observe(burstUi.chart)
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', drawChart)
addEventListener('pagehide', () => { hub.close(); client.end(true) })

hub.connect()
renderDiffer()
drawChart()
void pollStats()
