import { randomBytes, randomInt } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
import { FusionError, WS_CLOSE } from '../../core/errors.js'
import type { Admit } from '../../core/admit.js'
import type { HistoryStore } from '../../core/history/history-store.js'
import { PAGE_MESSAGES, pageAfter, pageLatest, type ReadGate } from '../../core/history/history-page.js'
import type { GatewayOptions } from '../../core/options.js'
import type { Acl } from '../../core/policy/acl.js'
import type { Stats } from '../../core/stats.js'
import type { LogFn, RateGateFactory } from '../../core/types.js'
import type { Bridge } from '../../engine/bridge.js'
import type { FusionMessage } from '../../engine/message.js'
import type { PresenceTracker } from '../../engine/presence.js'
import { Dispatcher, sessionIdentity } from './dispatch.js'
import { mayRead, readJoin, type JoinRequest } from './join.js'
import { PresenceFanout } from './presence-fanout.js'
import { HubSession } from './session.js'

export interface HubDeps {
  readonly options: Readonly<GatewayOptions>
  readonly bridge: Bridge
  readonly history: HistoryStore
  readonly reads: ReadGate
  readonly presence: PresenceTracker
  readonly acl: Acl
  readonly admit: Admit
  readonly stats: Stats
  readonly log: LogFn
  /** With auth on: the user a connection's token proves, or why it does not. Undefined: auth off. */
  readonly identify?: ((req: IncomingMessage) => string | FusionError) | undefined
  /** Makes each session's message-rate gate; undefined for no limit. */
  readonly rateGate?: RateGateFactory | undefined
}

/** Says why in an error frame, then closes with 1008 (PROTOCOL.md: bad token, policy). */
function refuseSocket (ws: WebSocket, err: FusionError): void {
  ws.send(JSON.stringify({ type: 'error', code: err.code, message: err.message }))
  ws.close(WS_CLOSE.POLICY, err.code)
}

const HUB = Symbol('fusion.hub')
const SESSION = Symbol('fusion.hubSession')
type TaggedSocket = WebSocket & { [HUB]?: Hub, [SESSION]?: HubSession }
function ignoreError (): void {}

/**
 * The plain WebSocket hub at /ws: admission of a connection (join.ts), its frames
 * (dispatch.ts), one session per socket (session.ts); this class holds the sessions and
 * their lifecycle: join, presence fan-out, heartbeat, reload, close.
 */
export class Hub {
  readonly wss: WebSocketServer
  readonly #deps: HubDeps
  readonly #dispatch: Dispatcher
  readonly #sessions = new Map<string, HubSession>()
  readonly #names = new Set<string>()
  readonly #heartbeat: NodeJS.Timeout
  readonly #presence: PresenceFanout
  #closing: Promise<void> | undefined

  constructor (deps: HubDeps) {
    this.#deps = deps
    this.#dispatch = new Dispatcher(deps)
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
    this.#presence = new PresenceFanout(deps.presence, { intervalMs: options.presenceIntervalMs, roster: options.presenceRoster })
  }

  get size (): number { return this.#sessions.size }

  readonly #onSlow = (s: HubSession): void => this.#dropSlow(s)
  readonly #onMessageOut = (msg: FusionMessage): void => {
    const { stats } = this.#deps
    stats.doors.ws.messagesOut++
    stats.latency.delivered(msg.stamp, false)
  }

  static readonly #onPong = function (this: TaggedSocket): void {
    const session = this[SESSION]
    if (session) session.alive = true
  }

  static readonly #onMessage = function (this: TaggedSocket, data: unknown, isBinary: boolean): void {
    const hub = this[HUB]
    const session = this[SESSION]
    if (hub && session) hub.#dispatch.onFrame(session, data as Buffer, isBinary)
  }

  static readonly #onSocketClose = function (this: TaggedSocket): void {
    const hub = this[HUB]
    const session = this[SESSION]
    if (hub && session) hub.#onClose(session)
  }

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
    const { options, stats, acl } = this.#deps
    if (this.#closing) { ws.close(WS_CLOSE.GOING_AWAY, 'server shutting down'); return }
    let join: JoinRequest
    try {
      join = readJoin(req, this.#newClientId(), { acl, limits: options, identify: this.#deps.identify, guestName: () => this.#uniqueGuest() })
    } catch (err) {
      refuseSocket(ws, err as FusionError)
      return
    }
    const session = new HubSession({
      ws,
      clientId: join.clientId,
      name: join.name,
      room: join.room,
      format: join.format,
      presence: join.presence,
      presenceBatch: join.presenceBatch,
      user: join.user,
      rate: this.#deps.rateGate?.(),
      sendHighWaterMark: options.sendHighWaterMark,
      onSlow: this.#onSlow,
      onMessageOut: this.#onMessageOut
    })
    this.#sessions.set(session.clientId, session)
    this.#names.add(join.name)
    stats.opened('ws')
    // Listeners shared by every socket, `this` being the socket: an idle connection
    // carries no closures of ours (10,000 people in a room hold 10,000 of each).
    const tagged = ws as TaggedSocket
    tagged[HUB] = this
    tagged[SESSION] = session
    ws.on('pong', Hub.#onPong)
    ws.on('message', Hub.#onMessage)
    ws.on('error', ignoreError) // a protocol error is followed by 'close'; ws has already sent the close code
    ws.on('close', Hub.#onSocketClose)
    session.writeFirst({ type: 'welcome', clientId: session.clientId, name: join.name, room: join.room, server: options.serverName, format: join.format })
    void this.#join(session, join.since)
  }

  async #join (session: HubSession, since: number | undefined): Promise<void> {
    const { bridge, history, options, presence, log } = this.#deps
    let rosterSent = false
    try {
      session.subscriptions.add(session.roomTopic)
      await bridge.subscribe(session.roomTopic, session)
      const page = await this.#deps.reads.run(() => since !== undefined
        ? pageAfter(history, session.roomTopic, since, PAGE_MESSAGES)
        : pageLatest(history, session.roomTopic, options.historyLimit))
      if (session.closed) return
      session.release(page.messages, page.more)
      // The roster right after the history; from then on the gathered changes.
      this.#presence.add(session)
      rosterSent = true
      await presence.announce(session.clientId, 'online', session.name, 'ws')
    } catch (err) {
      log('error', `hub: joining ${session.clientId} to ${session.roomTopic} failed`, err)
      if (!session.released) session.release([])
      if (!rosterSent) this.#presence.add(session)
    }
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
    this.#presence.remove(session)
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
      if (s.user !== undefined && userGone?.(s.user)) {
        this.#closeForPolicy(s, 'NOT_AUTHORIZED', `user ${s.user} no longer exists`)
        closed++
        continue
      }
      const who = sessionIdentity(s)
      for (const filter of [...s.subscriptions]) {
        if (mayRead(this.#deps.acl, who, filter)) continue
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
      this.#presence.close()
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
