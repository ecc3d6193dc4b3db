// A /ws hub connection that comes back by itself. After the first join it asks for
// `?since=<seq>`, so the hub replays exactly the chat messages it missed, and it
// notices when the server's log was reset (a --memory gateway restarted).

import { byteLength, wsFrameBytes } from './wire.js'

/** Close codes the hub uses (PROTOCOL.md). */
const CLOSE_POLICY = 1008
const BACKOFF_MIN_MS = 400
const BACKOFF_MAX_MS = 10_000

/**
 * @typedef {'connecting'|'online'|'waiting'|'offline'|'refused'} HubState
 * Events: `status` {state, attempt, delayMs, code}, `frame` {frame, bytes, at}
 * (bytes: the whole received frame; at: performance.now() when it arrived), `sent` {frame, bytes}.
 */
export class HubSocket extends EventTarget {
  /** @type {WebSocket|undefined} */
  #ws
  #timer = 0
  #attempt = 0
  #stopped = false
  #joined = false
  #lastSeq = 0
  /** @type {HubState} */
  state = 'offline'
  clientId = ''
  /** Times the connection came back after being lost. */
  reconnects = 0
  /** Milliseconds from opening the socket to the welcome frame, on the last connect. */
  connectMs = NaN

  /**
   * @param {{ room: string, name: string, presence?: boolean, path?: string }} opts
   */
  constructor (opts) {
    super()
    this.room = opts.room
    this.name = opts.name
    this.presence = opts.presence ?? true
    this.path = opts.path ?? '/ws'
    this.onOnline = () => { if (this.state === 'waiting') this.#open() }
    addEventListener('online', this.onOnline)
  }

  get topic () { return `chat/${this.room}` }
  get lastSeq () { return this.#lastSeq }

  /** Opens (or reopens) now. */
  connect () {
    this.#stopped = false
    this.#open()
  }

  /** Moves to another room: forget the sequence and join it fresh. */
  switchRoom (room) {
    this.room = room
    this.#joined = false
    this.#lastSeq = 0
    this.#reopen()
  }

  /** A new name needs a new connection; nothing is missed thanks to `since`. */
  rename (name) {
    this.name = name
    this.#reopen()
  }

  /** Sends a JSON frame; false when not connected. */
  send (frame) {
    const ws = this.#ws
    if (!ws || ws.readyState !== WebSocket.OPEN || this.state !== 'online') return false
    const text = JSON.stringify(frame)
    ws.send(text)
    this.dispatchEvent(new CustomEvent('sent', { detail: { frame, bytes: wsFrameBytes(byteLength(text), true) } }))
    return true
  }

  /** Closes for good (no reconnect). */
  close () {
    this.#stopped = true
    clearTimeout(this.#timer)
    removeEventListener('online', this.onOnline)
    this.#ws?.close(1000, 'bye')
    this.#setState('offline')
  }

  #reopen () {
    clearTimeout(this.#timer)
    const old = this.#ws
    this.#ws = undefined
    if (old) { old.onclose = null; old.close(1000, 'reconnecting') }
    this.#attempt = 0
    this.#open()
  }

  #url () {
    const u = new URL(this.path, location.href)
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
    u.searchParams.set('room', this.room)
    u.searchParams.set('name', this.name)
    // Presence as one presence-batch frame per interval (the count and the most recent
    // clients) rather than a frame per join: PROTOCOL.md, issue 14.
    u.searchParams.set('presence', this.presence ? 'batch' : 'off')
    if (this.#joined) u.searchParams.set('since', String(this.#lastSeq))
    return u.href
  }

  #open () {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    if (this.#ws && this.#ws.readyState <= WebSocket.OPEN) return
    const resumed = this.#joined
    const seqBefore = this.#lastSeq
    const started = performance.now()
    this.#setState('connecting')
    const ws = new WebSocket(this.#url())
    this.#ws = ws
    ws.onmessage = (ev) => {
      // When the frame arrived, before any work on it: a page timing round trips reads this.
      const at = performance.now()
      if (typeof ev.data !== 'string') return
      let frame
      try { frame = JSON.parse(ev.data) } catch { return }
      if (frame === null || typeof frame !== 'object') return
      if (frame.type === 'welcome') {
        this.clientId = frame.clientId
        this.connectMs = performance.now() - started
        this.#attempt = 0
        if (resumed) this.reconnects++
        this.#setState('online')
      }
      if (frame.type === 'history' && frame.topic === this.topic) {
        this.#joined = true
        for (const m of frame.messages ?? []) this.#noteSeq(m.seq)
        if (resumed) void this.#checkReset(seqBefore)
      }
      if (frame.type === 'message' && frame.topic === this.topic) this.#noteSeq(frame.seq)
      this.dispatchEvent(new CustomEvent('frame', { detail: { frame, bytes: wsFrameBytes(byteLength(ev.data), false), resumed, at } }))
    }
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return
      this.#ws = undefined
      if (this.#stopped) return
      if (ev.code === CLOSE_POLICY) {
        this.#setState('refused', { code: ev.code, reason: ev.reason })
        return
      }
      this.#schedule(ev.code)
    }
  }

  #schedule (code) {
    // Exponential backoff with jitter, so a restarted server is not hit by every page at once.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt)
    const delayMs = Math.round(base / 2 + Math.random() * base / 2)
    this.#attempt++
    this.#setState('waiting', { delayMs, attempt: this.#attempt, code })
    this.#timer = setTimeout(() => this.#open(), delayMs)
  }

  #noteSeq (seq) {
    if (typeof seq === 'number' && seq > this.#lastSeq) this.#lastSeq = seq
  }

  /**
   * A gateway that keeps nothing on disk starts its sequence again from 1: `since`
   * then names a future, and the hub replays nothing. Ask the log where it stands and
   * fetch its history when it went backwards.
   */
  async #checkReset (seqBefore) {
    const topic = this.topic
    try {
      const res = await fetch(`/api/history?topic=${encodeURIComponent(topic)}&limit=1`, { cache: 'no-store' })
      if (!res.ok) return
      const head = await res.json()
      if (typeof head.lastSeq !== 'number' || head.lastSeq >= seqBefore || topic !== this.topic) return
      const full = await (await fetch(`/api/history?topic=${encodeURIComponent(topic)}`, { cache: 'no-store' })).json()
      if (topic !== this.topic) return
      this.#lastSeq = 0
      for (const m of full.messages ?? []) this.#noteSeq(m.seq)
      const frame = { type: 'history', topic, messages: full.messages ?? [], resync: true }
      this.dispatchEvent(new CustomEvent('frame', { detail: { frame, bytes: 0, resumed: true } }))
    } catch {
      // The next reconnect checks again.
    }
  }

  #setState (state, extra = {}) {
    this.state = state
    this.dispatchEvent(new CustomEvent('status', { detail: { state, ...extra } }))
  }
}
