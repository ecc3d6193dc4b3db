import { randomBytes, randomInt } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { IncomingMessage } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
import { FusionError, WS_CLOSE } from '../errors.js'
import type { Bridge } from '../bridge/bridge.js'
import type { HistoryStore } from '../history/history-store.js'
import type { Acl, Identity } from '../policy/acl.js'
import type { Stats } from '../stats.js'
import { encodeEnvelope } from '../topics/envelope.js'
import { checkTopicFilter, checkTopicName, chatRoomOf } from '../topics/topic-rules.js'
import { parseClientFrame, type ClientFrame, type FrameId } from './frames.js'
import type { PresenceInfo, PresenceTracker } from './presence.js'
import { HubSession, type Format } from './session.js'
import type { GatewayOptions } from '../options.js'
import type { RateVerdict } from '../policy/token-bucket.js'
import { cookieValue } from '../policy/auth.js'
import type { DoorLatency } from '../door-latency.js'

export interface HubDeps {
  readonly options: Readonly<GatewayOptions>
  readonly bridge: Bridge
  readonly history: HistoryStore
  readonly presence: PresenceTracker
  readonly acl: Acl
  readonly stats: Stats
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, err?: unknown) => void
  /** With auth on: the user a connection's token proves, or why it does not. Undefined: auth off. */
  readonly identify?: ((req: IncomingMessage) => string | FusionError) | undefined
  /** Makes each session's message-rate gate; undefined for no limit. */
  readonly rateGate?: (() => { take (): RateVerdict }) | undefined
  /** Times messages from this door's read to their last delivery, and this door's writes (door-latency.ts). */
  readonly latency?: DoorLatency | undefined
}

/** Says why in an error frame, then closes with 1008 (PROTOCOL.md: bad token, policy). */
function refuseSocket (ws: WebSocket, err: FusionError): void {
  ws.send(JSON.stringify({ type: 'error', code: err.code, message: err.message }))
  ws.close(WS_CLOSE.POLICY, err.code)
}

const MAX_NAME = 64
const MAX_ROOM = 128
// Control characters in a display name would let one client garble other people's screens.
const CONTROL = /[\u0000-\u001f\u007f]/g

function cleanName (raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined
  const name = raw.replace(CONTROL, '').trim().slice(0, MAX_NAME)
  return name.length ? name : undefined
}

/**
 * The plain WebSocket hub at /ws: one session per socket, the frame protocol of
 * PROTOCOL.md, and fan-out through the bridge.
 */
export class Hub {
  readonly wss: WebSocketServer
  readonly #deps: HubDeps
  readonly #sessions = new Map<string, HubSession>()
  readonly #names = new Set<string>()
  // The user each session proved (auth on) and its rate gate.
  readonly #users = new WeakMap<HubSession, string>()
  readonly #rates = new WeakMap<HubSession, { take (): RateVerdict }>()
  readonly #heartbeat: NodeJS.Timeout
  readonly #unlistenPresence: () => void
  #closing: Promise<void> | undefined

  constructor (deps: HubDeps) {
    this.#deps = deps
    const { options } = deps
    this.wss = new WebSocketServer({
      noServer: true,
      // Room for JSON escaping and base64 around the largest payload we accept; a
      // bigger frame is closed with 1009 by ws before it is buffered whole.
      maxPayload: options.maxPayload * 2 + 4096,
      perMessageDeflate: false,
      clientTracking: false
    })
    this.wss.on('connection', (ws: WebSocket, req: IncomingMessage) => this.#onConnection(ws, req))
    this.#heartbeat = setInterval(() => this.#beat(), options.heartbeatMs)
    this.#heartbeat.unref()
    this.#unlistenPresence = deps.presence.onChange((p) => this.#broadcastPresence(p))
  }

  get size (): number { return this.#sessions.size }

  #uniqueGuest (): string {
    for (let i = 0; i < 20; i++) {
      const name = `guest-${randomInt(1000, 10000)}`
      if (!this.#names.has(name)) return name
    }
    return `guest-${randomBytes(4).toString('hex')}`
  }

  #newClientId (): string {
    for (;;) {
      const id = `ws-${randomBytes(4).toString('hex')}`
      if (!this.#sessions.has(id)) return id
    }
  }

  #onConnection (ws: WebSocket, req: IncomingMessage): void {
    const { options, stats } = this.#deps
    if (this.#closing) { ws.close(WS_CLOSE.GOING_AWAY, 'server shutting down'); return }
    const user = this.#deps.identify?.(req)
    if (user instanceof FusionError) { refuseSocket(ws, user); return }
    const url = new URL(req.url ?? '/', 'http://localhost')
    const q = url.searchParams
    // With auth on, a user is shown by the name they proved, never one they typed.
    const name = user ?? cleanName(q.get('name') ?? undefined) ??
      cleanName(cookieValue(req.headers.cookie, 'fusion_name')) ?? this.#uniqueGuest()
    const format: Format = q.get('format') === 'text' ? 'text' : 'json'
    const roomParam = (q.get('room') ?? '').trim().slice(0, MAX_ROOM)
    let room = roomParam.length ? roomParam : 'lobby'
    try { checkTopicName(`chat/${room}`, options) } catch { room = 'lobby' }
    const presenceParam = q.get('presence')
    const clientId = this.#newClientId()
    const who: Identity = { clientId, username: user, door: 'ws' }
    // Joining the room is a subscription: the same ACL as any other.
    try { this.#deps.acl.checkSubscribe(who, `chat/${room}`) } catch (err) { refuseSocket(ws, err as FusionError); return }
    const session = new HubSession({
      ws,
      clientId,
      name,
      room,
      format,
      presence: presenceParam !== '0' && presenceParam !== 'off' && presenceParam !== 'false' && this.#mayRead(who, 'presence/#'),
      sendHighWaterMark: options.sendHighWaterMark,
      onSlow: (s) => this.#dropSlow(s),
      onMessageOut: (msg) => {
        stats.doors.ws.messagesOut++
        this.#deps.latency?.delivered(msg.stamp, false)
      }
    })
    this.#sessions.set(session.clientId, session)
    if (user !== undefined) this.#users.set(session, user)
    if (this.#deps.rateGate) this.#rates.set(session, this.#deps.rateGate())
    this.#names.add(name)
    stats.opened('ws')
    ws.on('pong', () => { session.alive = true })
    ws.on('message', (data, isBinary) => this.#onFrame(session, data as Buffer, isBinary))
    ws.on('error', () => {}) // a protocol error is followed by 'close'; ws has already sent the close code
    ws.on('close', () => this.#onClose(session))
    session.writeFirst({ type: 'welcome', clientId: session.clientId, name, room, server: options.serverName, format })
    void this.#join(session, q.get('since'))
  }

  async #join (session: HubSession, sinceParam: string | null): Promise<void> {
    const { bridge, history, options, presence, log } = this.#deps
    try {
      session.subscriptions.add(session.roomTopic)
      await bridge.subscribe(session.roomTopic, session)
      const since = sinceParam !== null && /^\d+$/.test(sinceParam) ? Number(sinceParam) : undefined
      const records = since !== undefined
        ? await history.since(session.roomTopic, since, 10_000)
        : await history.last(session.roomTopic, options.historyLimit)
      if (session.closed) return
      session.release(records)
      if (session.wantsPresence) {
        for (const p of presence.online(100)) session.writeJson(presenceFrame(p))
      }
      await presence.announce(session.clientId, 'online', session.name, 'ws')
    } catch (err) {
      log('error', `hub: joining ${session.clientId} to ${session.roomTopic} failed`, err)
      session.release([])
    }
  }

  #onFrame (session: HubSession, data: Buffer, isBinary: boolean): void {
    // The moment this door has the message: its share of the trip starts here.
    const at = performance.now()
    const { stats } = this.#deps
    stats.doors.ws.messagesIn++
    if (this.#overRate(session, data, isBinary)) return
    if (isBinary) {
      this.#fail(session, new FusionError('BAD_FRAME', 'binary frames are not supported: send text (JSON or a chat line)'))
      return
    }
    let frame: ClientFrame | { type: 'line', text: string }
    try {
      frame = parseClientFrame(data.toString('utf8'))
    } catch (err) {
      this.#fail(session, err, (err as { frameId?: FrameId }).frameId)
      return
    }
    this.#handle(session, frame, at).catch((err) => this.#fail(session, err, 'id' in frame ? frame.id : undefined))
  }

  /**
   * True when the frame is over the session's rate: it is answered RATE_LIMITED and
   * dropped, and a client that keeps going is closed with 1008.
   */
  #overRate (session: HubSession, data: Buffer, isBinary: boolean): boolean {
    if (session.closed) return true
    const verdict = this.#rates.get(session)?.take() ?? 'ok'
    if (verdict === 'ok') return false
    this.#deps.stats.dropped.rateLimited++
    if (verdict === 'cut') {
      session.close(WS_CLOSE.POLICY, 'over the message rate')
      return true
    }
    let id: FrameId | undefined
    if (!isBinary) {
      try {
        const f = parseClientFrame(data.toString('utf8'))
        id = 'id' in f ? f.id : undefined
      } catch (err) { id = (err as { frameId?: FrameId }).frameId }
    }
    this.#fail(session, new FusionError('RATE_LIMITED', `over ${this.#deps.options.msgRate} messages a second; slow down`), id)
    return true
  }

  #mayRead (who: Identity, filter: string): boolean {
    try { this.#deps.acl.checkSubscribe(who, filter); return true } catch { return false }
  }

  #identity (session: HubSession): Identity {
    return { clientId: session.clientId, username: this.#users.get(session), door: 'ws' }
  }

  async #handle (session: HubSession, frame: ClientFrame | { type: 'line', text: string }, at: number): Promise<void> {
    const { options, bridge, acl } = this.#deps
    switch (frame.type) {
      case 'line': {
        if (frame.text.length === 0) return // an empty line from a piped stdin is not a message
        await this.#chat(session, session.room, frame.text, 0, false, at)
        return
      }
      case 'chat': {
        await this.#chat(session, frame.room ?? session.room, frame.text, 0, false, at)
        this.#ack(session, frame.id)
        return
      }
      case 'publish': {
        const topic = checkTopicName(frame.topic, options)
        acl.checkPublish(this.#identity(session), topic)
        if (chatRoomOf(topic) !== undefined) {
          await this.#chat(session, topic.slice(5), frame.payload.toString('utf8'), frame.qos, frame.retain, at)
        } else {
          this.#checkSize(frame.payload.length)
          await bridge.publish({ topic, payload: frame.payload, qos: frame.qos, retain: frame.retain, origin: this.#origin(session), received: { door: 'ws', at } })
        }
        this.#ack(session, frame.id)
        return
      }
      case 'subscribe': {
        const filter = checkTopicFilter(frame.topic, options)
        acl.checkSubscribe(this.#identity(session), filter)
        const fresh = !session.subscriptions.has(filter)
        if (fresh && session.subscriptions.size >= options.maxSubscriptions) {
          throw new FusionError('LIMIT_EXCEEDED', `at most ${options.maxSubscriptions} subscriptions per client`)
        }
        session.subscriptions.add(filter)
        await bridge.subscribe(filter, session)
        this.#ack(session, frame.id)
        if (fresh || frame.since !== undefined) await this.#replay(session, filter, frame.since)
        return
      }
      case 'unsubscribe': {
        const filter = checkTopicFilter(frame.topic, options)
        if (session.subscriptions.delete(filter)) bridge.unsubscribe(filter, session)
        this.#ack(session, frame.id)
        return
      }
      case 'ping':
        session.writeJson({ type: 'pong', ...(frame.id !== undefined ? { id: frame.id } : {}), ts: Date.now() })
    }
  }

  /** After a subscribe: retained messages, or with `since` the logged messages missed. */
  async #replay (session: HubSession, filter: string, since: number | undefined): Promise<void> {
    const { bridge, history } = this.#deps
    if (since !== undefined && !/[+#]/.test(filter)) {
      for (const r of await history.since(filter, since, 10_000)) {
        session.writeJson({ type: 'message', ...r, qos: 0, retain: false })
      }
      return
    }
    for (const msg of await bridge.retained(filter)) session.sendMessage(msg)
  }

  #origin (session: HubSession): { ts: number, via: 'ws', from: string, clientId: string } {
    return { ts: Date.now(), via: 'ws', from: session.name, clientId: session.clientId }
  }

  #checkSize (bytes: number): void {
    const max = this.#deps.options.maxPayload
    if (bytes > max) {
      this.#deps.stats.dropped.tooLarge++
      throw new FusionError('TOO_LARGE', `payload is ${bytes} bytes; the limit is ${max}`)
    }
  }

  async #chat (session: HubSession, room: string, text: string, qos: 0 | 1 = 0, retain = false, at?: number): Promise<void> {
    const { options, acl, bridge } = this.#deps
    const topic = checkTopicName(`chat/${room}`, options)
    acl.checkPublish(this.#identity(session), topic)
    const origin = this.#origin(session)
    const payload = encodeEnvelope({ from: session.name, text, ts: origin.ts, via: 'ws' })
    this.#checkSize(payload.length)
    await bridge.publish({ topic, payload, qos, retain, origin, received: at === undefined ? undefined : { door: 'ws', at } })
  }

  #ack (session: HubSession, id: FrameId | undefined): void {
    if (id !== undefined) session.writeJson({ type: 'ack', id })
  }

  #fail (session: HubSession, err: unknown, id?: FrameId): void {
    const { stats, log } = this.#deps
    if (!(err instanceof FusionError)) {
      log('error', `hub: frame from ${session.clientId} failed`, err)
      err = new FusionError('STORE_FAILED', 'the message could not be handled; it was not accepted')
    }
    const e = err as FusionError
    if (e.code === 'ACL_DENIED') stats.dropped.aclDenied++
    else if (e.code === 'BAD_JSON' || e.code === 'BAD_FRAME' || e.code === 'BAD_TOPIC') stats.dropped.badInput++
    session.writeJson({ type: 'error', ...(id !== undefined ? { id } : {}), code: e.code, message: e.message })
  }

  #broadcastPresence (p: PresenceInfo): void {
    if (this.#sessions.size === 0) return
    const data = JSON.stringify(presenceFrame(p))
    // Sessions still reading their history get the whole list right after it.
    for (const s of this.#sessions.values()) if (s.wantsPresence && s.released) s.write(data)
  }

  #dropSlow (session: HubSession): void {
    this.#deps.stats.dropped.slowConsumer++
    session.close(WS_CLOSE.TRY_AGAIN_LATER, 'reading too slowly')
    // A reader that stopped reading will not read our close frame either.
    setTimeout(() => session.ws.terminate(), 1000).unref()
  }

  #onClose (session: HubSession): void {
    const { bridge, presence, stats } = this.#deps
    if (!this.#sessions.delete(session.clientId)) return
    session.closed = true
    this.#names.delete(session.name)
    stats.closed('ws')
    for (const filter of session.subscriptions) bridge.unsubscribe(filter, session)
    session.subscriptions.clear()
    if (!this.#closing) presence.announce(session.clientId, 'offline', session.name, 'ws').catch(() => {})
  }

  #beat (): void {
    for (const s of this.#sessions.values()) {
      if (!s.alive) { s.ws.terminate(); continue }
      s.alive = false
      try { s.ws.ping() } catch {}
    }
  }

  /**
   * After a reload of the users and rules: a session whose user is gone gets an `error`
   * frame NOT_AUTHORIZED and 1008, as for a bad token; a filter the ACL now refuses is
   * dropped with an `error` frame ACL_DENIED naming it, and a session whose own room is
   * refused is closed with 1008, as a refused join is.
   */
  reconcile (userGone?: (user: string) => boolean): { closed: number, revoked: number } {
    let closed = 0
    let revoked = 0
    for (const s of [...this.#sessions.values()]) {
      const user = this.#users.get(s)
      if (user !== undefined && userGone?.(user)) {
        this.#closeForPolicy(s, 'NOT_AUTHORIZED', `user ${user} no longer exists`)
        closed++
        continue
      }
      const who = this.#identity(s)
      for (const filter of [...s.subscriptions]) {
        if (this.#mayRead(who, filter)) continue
        revoked++
        if (filter === s.roomTopic) {
          this.#closeForPolicy(s, 'ACL_DENIED', `subscribe to ${filter} is no longer allowed`)
          break
        }
        s.subscriptions.delete(filter)
        this.#deps.bridge.unsubscribe(filter, s)
        s.writeJson({ type: 'error', code: 'ACL_DENIED', message: `subscribe to ${filter} is no longer allowed: unsubscribed` })
      }
    }
    return { closed, revoked }
  }

  #closeForPolicy (s: HubSession, code: 'NOT_AUTHORIZED' | 'ACL_DENIED', message: string): void {
    s.writeJson({ type: 'error', code, message })
    s.close(WS_CLOSE.POLICY, code)
    setTimeout(() => s.ws.terminate(), 1000).unref()
  }

  /** Closes every session with 1001 (terminating stragglers after the timeout); safe to call twice. */
  close (): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#heartbeat)
      this.#unlistenPresence()
      const sessions = [...this.#sessions.values()]
      // Presence goes offline for everyone we hold, before the broker closes.
      await Promise.allSettled(sessions.map((s) => this.#deps.presence.announce(s.clientId, 'offline', s.name, 'ws')))
      const closed = sessions.map((s) => new Promise<void>((resolve) => {
        if (s.ws.readyState === s.ws.CLOSED) return resolve()
        s.ws.once('close', () => resolve())
        s.close(WS_CLOSE.GOING_AWAY, 'server shutting down')
      }))
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        Promise.all(closed),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#deps.options.closeTimeoutMs) })
      ])
      clearTimeout(timer)
      for (const s of sessions) s.ws.terminate()
      await new Promise<void>((resolve) => this.wss.close(() => resolve()))
    })()
    return this.#closing
  }
}

function presenceFrame (p: PresenceInfo): Record<string, unknown> {
  return { type: 'presence', clientId: p.clientId, name: p.name, status: p.status, via: p.via, ts: p.ts }
}
