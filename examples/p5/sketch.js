// @ts-check
// A p5.js sketch on the topic space, over the plain WebSocket hub (/ws): it subscribes to
// sensors/+/temp and draws each device's live value as a bar, and publishes the pointer
// position to sketch/<name>/pointer, where an MQTT client (mosquitto_sub, a device)
// reads it. p5 runs in instance mode (no globals but `p5` itself); no inline script, so
// the gateway's Content-Security-Policy holds; text goes in with textContent only.
/* global p5 */

/** Pointer messages a second at most: well under the gateway's --msg-rate. */
const POINTER_PER_SEC = 10
/** Devices drawn at most; more are counted in the table only up to the same cap. */
const MAX_DEVICES = 24
/** The bar scale, °C: device-sim's temperatures are 18–26. */
const SCALE = { min: 10, max: 35 }
/** Reconnect delay after a lost connection, doubling up to the cap. */
const RETRY = { first: 500, cap: 10_000 }
/** A device silent this long is drawn faded. */
const STALE_MS = 15_000

const params = new URLSearchParams(location.search)
// The name is one topic level: letters, digits, _ and - only, so it can never add a
// level or a wildcard to sketch/<name>/pointer.
const name = (params.get('name') ?? '').replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32) ||
  `p5-${Math.random().toString(36).slice(2, 7)}`
const pointerTopic = `sketch/${name}/pointer`

/** @type {Map<string, { value: number, at: number, count: number, row: HTMLTableRowElement }>} */
const devices = new Map()
/** @type {WebSocket | undefined} */
let ws
let retry = RETRY.first
let lastPointerSent = 0
/** @type {{ x: number, y: number } | undefined} */
let pendingPointer
let pointerTimer = 0

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id))
$('me').textContent = name

/** @param {'connecting' | 'online' | 'offline'} state @param {string} text */
function setStatus (state, text) {
  const el = $('status')
  el.dataset.state = state
  el.textContent = text
}

function connect () {
  const url = new URL('/ws', location.href)
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
  url.searchParams.set('name', name)
  url.searchParams.set('presence', '0')
  const token = params.get('token')
  if (token) url.searchParams.set('token', token)
  setStatus('connecting', 'connecting…')
  ws = new WebSocket(url)
  ws.onopen = () => { retry = RETRY.first }
  ws.onmessage = (e) => {
    /** @type {any} */
    let f
    try { f = JSON.parse(String(e.data)) } catch { return }
    if (f.type === 'welcome') {
      ws?.send(JSON.stringify({ type: 'subscribe', topic: 'sensors/+/temp', id: 'sensors' }))
    } else if (f.type === 'ack' && f.id === 'sensors') {
      setStatus('online', `online as ${name}: listening on sensors/+/temp`)
    } else if (f.type === 'message') {
      onReading(String(f.topic), f.payload, f.encoding)
    } else if (f.type === 'error') {
      setStatus('offline', `${f.code}: ${f.message}`)
    }
  }
  ws.onclose = () => {
    setStatus('offline', `offline; trying again in ${(retry / 1000).toFixed(1)} s`)
    setTimeout(connect, retry)
    retry = Math.min(RETRY.cap, retry * 2)
  }
}

/**
 * A reading: device-sim's `{"v":21.5,"ts":...}`, or a bare number (mosquitto_pub -m 21.5).
 * @param {string} topic @param {unknown} payload @param {unknown} encoding
 */
function onReading (topic, payload, encoding) {
  const m = /^sensors\/([^/]+)\/temp$/.exec(topic)
  if (!m || encoding === 'base64' || typeof payload !== 'string') return
  const id = /** @type {string} */ (m[1])
  let value = Number.NaN
  try {
    const parsed = JSON.parse(payload)
    value = typeof parsed === 'number' ? parsed : Number(parsed?.v)
  } catch { value = Number(payload) }
  if (!Number.isFinite(value)) return
  let d = devices.get(id)
  if (!d) {
    if (devices.size >= MAX_DEVICES) return
    const row = document.createElement('tr')
    row.dataset.device = id
    row.dataset.testid = 'device-row'
    for (const cls of ['device', 'value', 'count']) {
      const td = document.createElement('td')
      td.className = cls
      row.append(td)
    }
    const name = /** @type {HTMLElement} */ (row.cells[0])
    name.textContent = id
    d = { value, at: 0, count: 0, row }
    devices.set(id, d)
    // Rows in device order, as the bars are drawn.
    const rows = $('rows')
    const after = [...rows.children].find((r) => (/** @type {HTMLElement} */ (r).dataset.device ?? '') > id)
    rows.insertBefore(row, after ?? null)
  }
  d.value = value
  d.at = Date.now()
  d.count++
  const [, valueCell, countCell] = d.row.cells
  if (valueCell) valueCell.textContent = value.toFixed(2)
  if (countCell) countCell.textContent = String(d.count)
}

/** Sends the pointer (0..1 in both axes), at most POINTER_PER_SEC times a second. */
function sendPointer (/** @type {number} */ x, /** @type {number} */ y) {
  pendingPointer = { x: Math.round(x * 1000) / 1000, y: Math.round(y * 1000) / 1000 }
  const wait = lastPointerSent + 1000 / POINTER_PER_SEC - Date.now()
  if (wait > 0) {
    if (!pointerTimer) pointerTimer = window.setTimeout(() => { pointerTimer = 0; flushPointer() }, wait)
    return
  }
  flushPointer()
}

function flushPointer () {
  if (!pendingPointer || !ws || ws.readyState !== WebSocket.OPEN) return
  const payload = JSON.stringify({ ...pendingPointer, from: name, ts: Date.now() })
  ws.send(JSON.stringify({ type: 'publish', topic: pointerTopic, payload }))
  pendingPointer = undefined
  lastPointerSent = Date.now()
}

// Instance mode: the sketch's functions live on `p`, nothing on window.
// eslint-disable-next-line no-new
new p5((/** @type {any} */ p) => {
  let pointer = { x: -1, y: -1 }
  p.setup = () => {
    const c = p.createCanvas(Math.min(860, window.innerWidth - 32), 360)
    c.parent('canvas')
    p.textFont('sans-serif')
  }
  const move = () => {
    if (p.mouseX < 0 || p.mouseY < 0 || p.mouseX > p.width || p.mouseY > p.height) return
    pointer = { x: p.mouseX, y: p.mouseY }
    sendPointer(p.mouseX / p.width, p.mouseY / p.height)
  }
  p.mouseMoved = move
  p.mouseDragged = move
  p.touchMoved = () => { move(); return false }
  p.draw = () => {
    p.background(24, 28, 36)
    const list = [...devices.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))
    const top = 30
    const bottom = p.height - 40
    p.noStroke()
    p.fill(200)
    p.textSize(13)
    p.textAlign(p.LEFT, p.TOP)
    p.text(list.length ? `${list.length} device(s) on sensors/+/temp` : 'waiting for sensors/+/temp…', 12, 8)
    const w = (p.width - 24) / Math.max(list.length, 1)
    const now = Date.now()
    list.forEach(([id, d], i) => {
      const f = Math.min(1, Math.max(0, (d.value - SCALE.min) / (SCALE.max - SCALE.min)))
      const h = f * (bottom - top)
      const x = 12 + i * w
      // Warm colours for warm readings; a silent device fades.
      const alpha = now - d.at > STALE_MS ? 90 : 255
      const fresh = Math.max(0, 1 - (now - d.at) / 600)
      p.fill(p.lerp(60, 255, f), p.lerp(140, 90, f), p.lerp(255, 60, f), alpha)
      p.rect(x + 4, bottom - h, w - 8, h, 4)
      if (fresh > 0) { p.fill(255, 255, 255, 120 * fresh); p.rect(x + 4, bottom - h - 4, w - 8, 4, 2) }
      p.fill(235)
      p.textAlign(p.CENTER, p.BOTTOM)
      p.text(d.value.toFixed(1), x + w / 2, bottom - h - 6)
      p.textAlign(p.CENTER, p.TOP)
      p.text(id.length > 12 ? `${id.slice(0, 11)}…` : id, x + w / 2, bottom + 8)
    })
    if (pointer.x >= 0) {
      p.noFill()
      p.stroke(255, 220, 90)
      p.strokeWeight(2)
      p.circle(pointer.x, pointer.y, 18)
    }
  }
})

connect()
