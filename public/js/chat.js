// The chat page: one room at a time over the /ws hub, history on join, presence,
// reconnect without repeats. All text reaches the page through textContent.

import { el, byId, viaLabel, clockTime, safeDate, nearBottom } from './dom.js'
import { ensureName, cleanName, writeNameCookie } from './name.js'
import { HubSocket } from './hub-socket.js'

/** Messages kept in the view; older ones leave the DOM (the room keeps them). */
const MAX_SHOWN = 500
const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/
const ROOMS_KEY = 'fusion_rooms'
const MAX_ROOMS = 12

const ui = {
  status: byId('status'),
  nameForm: byId('name-form'),
  nameInput: byId('name-input'),
  rooms: byId('rooms'),
  roomForm: byId('room-form'),
  roomInput: byId('room-input'),
  roomName: byId('room-name'),
  greeting: byId('greeting'),
  clear: byId('clear'),
  messages: byId('messages'),
  sendForm: byId('send-form'),
  input: byId('message-input'),
  presenceBox: byId('presence-box'),
  presenceCount: byId('presence-count'),
  people: byId('presence-people'),
  devices: byId('presence-devices'),
  presenceMore: byId('presence-more'),
  presenceMoreText: byId('presence-more-text'),
  compareLink: byId('compare-link')
}

let name = ensureName()
let room = roomFromUrl() ?? 'lobby'
/** Keys of the messages already shown in this room: a replay never shows one twice. */
let seen = new Set()
/**
 * clientId -> {clientId, name, via, ts}: the most recent of who is online (the server
 * sends the count and the newest MAX_KEPT at most; "Show more" pages the rest over
 * HTTP). Bounded, so a room of 10,000 costs the page no more than one of 100.
 */
const online = new Map()
/** Entries kept, and shown per list; raised by "Show more". */
let maxKept = 100
const SHOWN_STEP = 100
/** Everyone online, from the server's count (more than `online` holds in a big room). */
let onlineCount = 0
let renderQueued = false
let welcomed = false

const socket = new HubSocket({ room, name })

function roomFromUrl () {
  const r = new URL(location.href).searchParams.get('room')
  return r !== null && ROOM_RE.test(r) ? r : undefined
}

/** The same message from live and from history has the same ts, sender and text. */
function messageKey (m) {
  return `${m.ts}\u0000${m.from}\u0000${m.payload}`
}

function knownRooms () {
  let list = []
  try { list = JSON.parse(localStorage.getItem(ROOMS_KEY) ?? '[]') } catch {}
  if (!Array.isArray(list)) list = []
  return ['lobby', ...list.filter((r) => typeof r === 'string' && ROOM_RE.test(r) && r !== 'lobby')].slice(0, MAX_ROOMS)
}

function rememberRoom (r) {
  const list = knownRooms().filter((x) => x !== r && x !== 'lobby')
  list.unshift(r)
  try { localStorage.setItem(ROOMS_KEY, JSON.stringify(list.slice(0, MAX_ROOMS - 1))) } catch {}
}

function renderRooms () {
  const items = knownRooms()
  if (!items.includes(room)) items.push(room)
  ui.rooms.replaceChildren(...items.map((r) => el('li', {},
    el('button', { type: 'button', className: 'room-link', 'data-room': r, testid: 'room-link', 'aria-current': r === room ? 'true' : undefined }, `#${r}`))))
}

function renderRoomTitle () {
  ui.roomName.textContent = room
  document.title = `#${room} · mqtt-fusion chat`
  ui.input.placeholder = `Message #${room}, Enter sends`
  ui.compareLink.href = `/compare.html?room=${encodeURIComponent(room)}`
}

function setStatus (state, detail = {}) {
  const text = {
    connecting: 'connecting…',
    online: 'online',
    waiting: `reconnecting in ${((detail.delayMs ?? 0) / 1000).toFixed(1)} s`,
    refused: 'refused by the server',
    offline: 'offline'
  }[state] ?? state
  ui.status.textContent = text
  ui.status.dataset.state = state
  ui.status.title = detail.attempt ? `attempt ${detail.attempt}` : ''
}

function notice (text, kind = 'info') {
  const stick = nearBottom(ui.messages)
  ui.messages.append(el('li', { className: `notice ${kind}`, testid: 'notice', 'data-ts': Date.now() }, text))
  trim()
  if (stick) scrollDown()
}

function scrollDown () { ui.messages.scrollTop = ui.messages.scrollHeight }

function trim () {
  while (ui.messages.childElementCount > MAX_SHOWN) ui.messages.firstElementChild?.remove()
}

/** Adds one chat message unless it is already shown; keeps the list in time order. */
function addMessage (m) {
  if (typeof m !== 'object' || m === null || typeof m.ts !== 'number') return false
  const key = messageKey(m)
  if (seen.has(key)) return false
  seen.add(key)
  const via = String(m.via ?? '')
  const text = m.encoding === 'base64' ? `[binary, ${Math.floor(String(m.payload).length * 3 / 4)} bytes]` : String(m.payload ?? '')
  const mine = via === 'ws' && m.from === name && m.clientId === socket.clientId
  const item = el('li', { className: `message via-${via.replace(/[^a-z]/g, '') || 'other'}${mine ? ' mine' : ''}`, testid: 'message', 'data-ts': m.ts, 'data-seq': m.seq, 'data-via': via },
    el('div', { className: 'meta' },
      el('span', { className: 'from', testid: 'message-from' }, String(m.from ?? '?')),
      el('span', { className: 'via', testid: 'message-via', title: `arrived through ${via || 'an unknown door'}` }, viaLabel(via)),
      el('time', { datetime: safeDate(m.ts)?.toISOString() ?? '', title: safeDate(m.ts)?.toLocaleString() ?? 'no valid time', testid: 'message-time' }, clockTime(m.ts))),
    el('p', { className: 'text', testid: 'message-text' }, text))
  const stick = nearBottom(ui.messages)
  // Walk back from the end: nearly every message is the newest.
  let after = ui.messages.lastElementChild
  while (after && Number(after.dataset.ts) > m.ts) after = after.previousElementSibling
  if (after) after.after(item)
  else ui.messages.prepend(item)
  trim()
  if (stick || mine) scrollDown()
  return true
}

/** Drops the oldest entries beyond maxKept (Map order: oldest first). */
function trimOnline () {
  for (const id of online.keys()) {
    if (online.size <= maxKept) break
    if (id !== socket.clientId) online.delete(id)
  }
}

function addOnline (p) {
  if (typeof p !== 'object' || p === null || typeof p.clientId !== 'string') return
  online.delete(p.clientId)
  online.set(p.clientId, { clientId: p.clientId, name: String(p.name ?? p.clientId), via: String(p.via ?? ''), ts: p.ts })
}

/** At most one render per animation frame, however many presence frames arrive. */
function queueRender () {
  if (renderQueued) return
  renderQueued = true
  requestAnimationFrame(() => { renderQueued = false; renderPresence() })
}

/** One presence-batch frame (PROTOCOL.md): a snapshot replaces the roster, a delta amends it. */
function applyBatch (frame) {
  if (frame.snapshot) online.clear()
  for (const id of Array.isArray(frame.left) ? frame.left : []) online.delete(id)
  const joined = Array.isArray(frame.joined) ? frame.joined : []
  // Most recent first: add oldest first so Map order stays oldest to newest.
  for (let i = joined.length - 1; i >= 0; i--) addOnline(joined[i])
  if (typeof frame.online === 'number') onlineCount = frame.online
  trimOnline()
  queueRender()
}

/** "Show more": the next page of who is online, from GET /api/presence. */
async function showMore () {
  ui.presenceMore.disabled = true
  try {
    const res = await fetch(`/api/presence?offset=${online.size}&limit=${SHOWN_STEP}`, { cache: 'no-store' })
    if (!res.ok) return
    const page = await res.json()
    maxKept += SHOWN_STEP
    const older = (Array.isArray(page.clients) ? page.clients : []).filter((p) => !online.has(p?.clientId))
    // Older than everyone kept: they go first in the Map.
    const rest = [...online.values()]
    online.clear()
    for (let i = older.length - 1; i >= 0; i--) addOnline(older[i])
    for (const p of rest) addOnline(p)
    if (typeof page.online === 'number') onlineCount = page.online
    queueRender()
  } catch {
    // Offline: the button stays for another try.
  } finally {
    ui.presenceMore.disabled = false
  }
}

function renderPresence () {
  const people = []
  const devices = []
  for (const p of [...online.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)))) {
    const you = p.clientId === socket.clientId
    const item = el('li', { className: 'presence-item', testid: 'presence-item', 'data-via': p.via, 'data-client': p.clientId },
      el('span', { className: 'dot', 'aria-hidden': 'true' }),
      el('span', { className: 'who' }, String(p.name)),
      you ? el('span', { className: 'you' }, '(you)') : null)
    if (p.via === 'mqtt') devices.push(item)
    else people.push(item)
  }
  ui.people.replaceChildren(...(people.length ? people : [el('li', { className: 'empty' }, 'nobody yet')]))
  ui.devices.replaceChildren(...(devices.length ? devices : [el('li', { className: 'empty' }, 'no device connected')]))
  const count = Math.max(onlineCount, online.size)
  ui.presenceCount.textContent = String(count)
  const hidden = count - online.size
  ui.presenceMore.hidden = hidden <= 0
  ui.presenceMoreText.textContent = hidden > 0 ? `and ${hidden} more online` : ''
}

socket.addEventListener('status', (ev) => {
  const { state } = ev.detail
  setStatus(state, ev.detail)
  if (state === 'waiting' && welcomed) {
    welcomed = false
    notice('Connection lost. Reconnecting…', 'warn')
  }
  if (state === 'refused') notice(`The server refused the connection${ev.detail.reason ? `: ${ev.detail.reason}` : ''}.`, 'error')
})

socket.addEventListener('frame', (ev) => {
  const { frame, resumed } = ev.detail
  switch (frame.type) {
    case 'welcome':
      welcomed = true
      online.clear()
      onlineCount = 0
      maxKept = SHOWN_STEP
      renderPresence()
      ui.greeting.textContent = `Hello ${frame.name}, you are in #${frame.room}.`
      if (!resumed) notice(`Welcome to #${frame.room}, ${frame.name}. Messages from browsers, MQTT devices and HTTP all land here.`)
      break
    case 'history': {
      if (frame.topic !== socket.topic) break
      let added = 0
      for (const m of frame.messages ?? []) if (addMessage(m)) added++
      if (resumed && !frame.resync) notice(added ? `Back online; ${added} missed message${added === 1 ? '' : 's'} caught up.` : 'Back online.')
      else if (frame.resync && added) notice(`The server restarted without its log; ${added} message${added === 1 ? '' : 's'} reloaded.`)
      break
    }
    case 'message':
      if (frame.topic === socket.topic) addMessage(frame)
      break
    case 'presence-batch':
      applyBatch(frame)
      break
    case 'presence':
      // The older frame, from a server before presence-batch.
      if (frame.status === 'online') addOnline(frame)
      else online.delete(frame.clientId)
      onlineCount = online.size
      trimOnline()
      queueRender()
      break
    case 'error':
      notice(`${frame.code}: ${frame.message}`, 'error')
      break
  }
})

function switchRoom (next, push = true) {
  if (!ROOM_RE.test(next)) return false
  if (next !== room) {
    room = next
    seen = new Set()
    ui.messages.replaceChildren()
    online.clear()
    onlineCount = 0
    renderPresence()
    socket.switchRoom(room)
  }
  rememberRoom(room)
  const url = new URL(location.href)
  url.searchParams.set('room', room)
  if (push && url.href !== location.href) history.pushState({ room }, '', url)
  renderRoomTitle()
  renderRooms()
  return true
}

ui.sendForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const text = ui.input.value
  if (text.trim().length === 0) { ui.input.focus(); return }
  if (socket.send({ type: 'chat', text })) ui.input.value = ''
  else notice('Not connected: your message is still in the box; send it again once online.', 'warn')
  ui.input.focus()
})

ui.nameForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const next = cleanName(ui.nameInput.value)
  if (!next) { ui.nameInput.value = name; return }
  ui.nameInput.value = next
  if (next !== name) {
    name = next
    writeNameCookie(name)
    socket.rename(name)
    notice(`You are now ${name}.`)
  }
  ui.input.focus()
})

ui.roomForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const next = ui.roomInput.value.trim()
  if (!switchRoom(next)) {
    ui.roomInput.setCustomValidity('Use 1 to 64 letters, digits, dots, dashes or underscores.')
    ui.roomInput.reportValidity()
    return
  }
  ui.roomInput.value = ''
  ui.input.focus()
})
ui.roomInput.addEventListener('input', () => ui.roomInput.setCustomValidity(''))

ui.rooms.addEventListener('click', (ev) => {
  const button = ev.target instanceof Element ? ev.target.closest('button[data-room]') : null
  if (!button) return
  switchRoom(button.getAttribute('data-room') ?? 'lobby')
  ui.input.focus()
})

ui.clear.addEventListener('click', () => {
  // The view only: the keys stay, so a replay after a reconnect does not bring them back.
  ui.messages.replaceChildren()
  ui.input.focus()
})

addEventListener('popstate', () => switchRoom(roomFromUrl() ?? 'lobby', false))

ui.presenceMore.addEventListener('click', () => { void showMore() })

if (matchMedia('(max-width: 720px)').matches) ui.presenceBox.open = false
ui.nameInput.value = name
switchRoom(room, false)
history.replaceState({ room }, '', (() => { const u = new URL(location.href); u.searchParams.set('room', room); return u })())
renderPresence()
socket.connect()
ui.input.focus()
