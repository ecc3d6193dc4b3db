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
  compareLink: byId('compare-link')
}

let name = ensureName()
let room = roomFromUrl() ?? 'lobby'
/** Keys of the messages already shown in this room: a replay never shows one twice. */
let seen = new Set()
/** clientId -> presence frame, for who is online now. */
const online = new Map()
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
  ui.presenceCount.textContent = String(online.size)
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
    case 'presence':
      if (frame.status === 'online') online.set(frame.clientId, frame)
      else online.delete(frame.clientId)
      renderPresence()
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

if (matchMedia('(max-width: 720px)').matches) ui.presenceBox.open = false
ui.nameInput.value = name
switchRoom(room, false)
history.replaceState({ room }, '', (() => { const u = new URL(location.href); u.searchParams.set('room', room); return u })())
renderPresence()
socket.connect()
ui.input.focus()
