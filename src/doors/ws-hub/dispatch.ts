import { performance } from 'node:perf_hooks'
import { FusionError, WS_CLOSE } from '../../core/errors.js'
import { isCounted, type Admit, type Source } from '../../core/admit.js'
import type { Acl } from '../../core/policy/acl.js'
import type { HistoryStore } from '../../core/history/history-store.js'
import { PAGE_MESSAGES, pageAfter, type ReadGate } from '../../core/history/history-page.js'
import type { GatewayOptions } from '../../core/options.js'
import type { Stats } from '../../core/stats.js'
import { chatTopic, checkTopicFilter } from '../../core/topics/topic-rules.js'
import type { Identity, LogFn } from '../../core/types.js'
import type { Bridge } from '../../engine/bridge.js'
import { parseClientFrame, type ChatLine, type ClientFrame, type FrameId } from './frames.js'
import type { HubSession } from './session.js'

export interface DispatchDeps {
  readonly options: Readonly<GatewayOptions>
  readonly bridge: Bridge
  readonly history: HistoryStore
  readonly reads: ReadGate
  readonly acl: Acl
  readonly admit: Admit
  readonly stats: Stats
  readonly log: LogFn
}

/** Replays one /ws client may run at once; the rest are refused LIMIT_EXCEEDED. */
export const MAX_REPLAYS_PER_SESSION = 2

/** The identity of a /ws session, as the policy sees it. */
export function sessionIdentity (session: HubSession): Identity {
  return { clientId: session.clientId, username: session.user, door: 'ws' }
}

/**
 * The frames of one /ws session: parse once, gate by rate, then chat and publish through
 * `admit`, subscribe through the ACL, answer with `ack` or `error` frames.
 */
export class Dispatcher {
  readonly #deps: DispatchDeps

  constructor (deps: DispatchDeps) {
    this.#deps = deps
  }

  onFrame (session: HubSession, data: Buffer, isBinary: boolean): void {
    // The moment this door has the message: the gateway's share of its trip starts here.
    const at = performance.now()
    this.#deps.stats.doors.ws.messagesIn++
    if (session.closed) return
    if (isBinary) {
      if (this.#overRate(session, undefined)) return
      this.fail(session, new FusionError('BAD_FRAME', 'binary frames are not supported: send text (JSON or a chat line)'))
      return
    }
    let frame: ClientFrame | ChatLine
    try {
      frame = parseClientFrame(data.toString('utf8'))
    } catch (err) {
      const id = (err as { frameId?: FrameId }).frameId
      if (this.#overRate(session, id)) return
      this.fail(session, err, id)
      return
    }
    const id = 'id' in frame ? frame.id : undefined
    if (this.#overRate(session, id)) return
    this.#handle(session, frame, at).catch((err) => this.fail(session, err, id))
  }

  /**
   * Every frame counts against the rate, not only publishes: parsing and answering cost
   * too. Over it the frame is answered RATE_LIMITED and dropped; a client that keeps
   * going is closed with 1008.
   */
  #overRate (session: HubSession, id: FrameId | undefined): boolean {
    const verdict = session.rate?.take() ?? 'ok'
    if (verdict === 'ok') return false
    this.#deps.stats.dropped.rateLimited++
    if (verdict === 'cut') {
      session.close(WS_CLOSE.POLICY, 'over the message rate')
      return true
    }
    this.fail(session, new FusionError('RATE_LIMITED', `over ${this.#deps.options.msgRate} messages a second; slow down`), id)
    return true
  }

  async #handle (session: HubSession, frame: ClientFrame | ChatLine, at: number): Promise<void> {
    const { options, bridge, acl } = this.#deps
    switch (frame.type) {
      case 'line': {
        if (frame.text.length === 0) return // an empty line from a piped stdin is not a message
        await this.#publish(session, 'ws-chat', chatTopic(session.room), Buffer.from(frame.text, 'utf8'), at)
        return
      }
      case 'chat': {
        await this.#publish(session, 'ws-chat', chatTopic(frame.room ?? session.room), Buffer.from(frame.text, 'utf8'), at)
        this.#ack(session, frame.id)
        return
      }
      case 'publish': {
        await this.#publish(session, 'ws-publish', frame.topic, frame.payload, at, frame.qos, frame.retain)
        this.#ack(session, frame.id)
        return
      }
      case 'subscribe': {
        const filter = checkTopicFilter(frame.topic, options)
        acl.checkSubscribe(sessionIdentity(session), filter)
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

  /** Chat text and publishes alike: `admit` wraps chat topics in the envelope. */
  async #publish (session: HubSession, source: Source, topic: unknown, payload: Buffer, at: number, qos: 0 | 1 = 0, retain = false): Promise<void> {
    const ok = this.#deps.admit({ source, who: sessionIdentity(session), name: session.name, topic, payload, wrapChat: true })
    await this.#deps.bridge.publish({ topic: ok.topic, payload: ok.payload, qos, retain, origin: ok.origin, received: { door: 'ws', at } })
  }

  /**
   * After a subscribe: retained messages, or with `since` one page of the logged messages
   * missed (PROTOCOL.md: a `history-more` frame says where the next page starts; the
   * client asks for it with another subscribe `since`). A page is bounded in messages and
   * bytes, streamed at the client's pace, and a session runs few replays at once.
   */
  async #replay (session: HubSession, filter: string, since: number | undefined): Promise<void> {
    const { bridge, history, reads } = this.#deps
    if (since !== undefined && !/[+#]/.test(filter)) {
      if (session.replays >= MAX_REPLAYS_PER_SESSION) {
        throw new FusionError('LIMIT_EXCEEDED', `at most ${MAX_REPLAYS_PER_SESSION} replays at once per client; ask again when one is done`)
      }
      session.replays++
      try {
        const page = await reads.run(() => pageAfter(history, filter, since, PAGE_MESSAGES))
        for (const r of page.messages) {
          if (!(await session.drained())) return
          session.writeJson({ type: 'message', ...r, qos: 0, retain: false })
        }
        const last = page.messages.at(-1)
        if (page.more && last) session.writeJson({ type: 'history-more', topic: filter, since: last.seq })
      } finally {
        session.replays--
      }
      return
    }
    for (const msg of await bridge.retained(filter)) session.sendMessage(msg)
  }

  #ack (session: HubSession, id: FrameId | undefined): void {
    if (id !== undefined) session.writeJson({ type: 'ack', id })
  }

  /** Answers a frame with an `error` frame; the connection stays open. */
  fail (session: HubSession, err: unknown, id?: FrameId): void {
    const { stats, log } = this.#deps
    if (!(err instanceof FusionError)) {
      log('error', `hub: frame from ${session.clientId} failed`, err)
      err = new FusionError('STORE_FAILED', 'the message could not be handled; it was not accepted')
    }
    const e = err as FusionError
    if (!isCounted(e)) {
      if (e.code === 'ACL_DENIED') stats.dropped.aclDenied++
      else if (e.code === 'BAD_JSON' || e.code === 'BAD_FRAME' || e.code === 'BAD_TOPIC') stats.dropped.badInput++
    }
    session.writeJson({ type: 'error', ...(id !== undefined ? { id } : {}), code: e.code, message: e.message })
  }
}
