import type { WebSocket } from 'ws'
import { chatTopic } from '../../core/topics/topic-rules.js'
import { WS_CLOSE } from '../../core/errors.js'
import type { Sink } from '../../engine/bridge.js'
import type { FusionMessage } from '../../engine/message.js'
import type { HistoryRecord, RateGate } from '../../core/types.js'
import { corkUntilNextTick } from '../ws-cork.js'

export type Format = 'json' | 'text'

export interface SessionInit {
  readonly ws: WebSocket
  readonly clientId: string
  readonly name: string
  readonly room: string
  readonly format: Format
  readonly presence: boolean
  /** `?presence=batch`: presence arrives as `presence-batch` frames instead of one `presence` frame per change. */
  readonly presenceBatch?: boolean | undefined
  /** The user the connection proved (auth on). */
  readonly user?: string | undefined
  /** The session's message-rate gate; undefined for no limit. */
  readonly rate?: RateGate | undefined
  readonly sendHighWaterMark: number
  readonly onSlow: (s: HubSession) => void
  /** Called for each message written to the client (the `messagesOut` counter of the door, its latency). */
  readonly onMessageOut?: ((msg: FusionMessage) => void) | undefined
}

/**
 * One /ws connection. Receives messages from the bridge (deduplicated: a client
 * on overlapping filters gets each message once) and writes them; holds live
 * messages back while its history is being read so the order is welcome, history,
 * live, with nothing twice.
 */
export class HubSession implements Sink {
  readonly ws: WebSocket
  readonly clientId: string
  readonly name: string
  readonly room: string
  readonly roomTopic: string
  readonly format: Format
  readonly wantsPresence: boolean
  /** Presence as `presence-batch` frames (PROTOCOL.md); false: the older `presence` frames. */
  readonly presenceBatch: boolean
  readonly user: string | undefined
  readonly rate: RateGate | undefined
  readonly subscriptions = new Set<string>()
  alive = true
  closed = false
  /** Replays (`since`) running for this session; a few at most (dispatch.ts). */
  replays = 0
  readonly #hwm: number
  readonly #onSlow: (s: HubSession) => void
  readonly #onMessageOut: ((msg: FusionMessage) => void) | undefined
  #last: FusionMessage | undefined
  // Until the history is out, live messages and every other frame (acks, pongs, errors)
  // wait here, so a client always sees welcome, then history, then the rest in order.
  #held: Array<FusionMessage | string | Buffer> | undefined = []
  #heldBytes = 0

  constructor (init: SessionInit) {
    this.ws = init.ws
    this.clientId = init.clientId
    this.name = init.name
    this.room = init.room
    this.roomTopic = chatTopic(init.room)
    this.format = init.format
    this.wantsPresence = init.presence && init.format === 'json'
    this.presenceBatch = this.wantsPresence && init.presenceBatch === true
    this.user = init.user
    this.rate = init.rate
    this.#hwm = init.sendHighWaterMark
    this.#onSlow = init.onSlow
    this.#onMessageOut = init.onMessageOut
  }

  get isText (): boolean { return this.format === 'text' }

  /** True once welcome and history are out and live frames flow. */
  get released (): boolean { return this.#held === undefined }

  deliver (msg: FusionMessage): void {
    // Aedes calls us once per matching filter; the decoded message is shared, so
    // identity tells a second filter's copy of the same publish.
    if (msg === this.#last) return
    this.#last = msg
    if (this.#held) this.#held.push(msg)
    else this.sendMessage(msg)
  }

  sendMessage (msg: FusionMessage): void {
    if (this.isText) {
      if (!msg.isChat) return
      this.write(msg.line())
    } else {
      this.write(msg.json())
    }
    this.#onMessageOut?.(msg)
  }

  /** Sends the first frame at once, ahead of anything held back (the `welcome`). */
  writeFirst (obj: unknown): void {
    // Hold the socket's writes to the end of this turn of the event loop, not just this
    // tick: the history and the roster, read from memory, are usually ready by then, and
    // welcome, history and roster leave in one write instead of two. On a join storm the
    // system calls are most of the cost (issue 14).
    const socket = (this.ws as unknown as { _socket?: { cork (): void, uncork (): void } | null })._socket
    if (socket) {
      socket.cork()
      setImmediate(() => socket.uncork())
    }
    if (!this.isText) this.#send(JSON.stringify(obj))
  }

  /** Sends the history frame, then what arrived meanwhile and is not in it. */
  release (history: readonly HistoryRecord[], more = false): void {
    const held = this.#held ?? []
    this.#held = undefined
    this.#heldBytes = 0
    const lastSeq = history.length ? (history[history.length - 1] as HistoryRecord).seq : 0
    if (!this.isText) {
      this.writeJson({ type: 'history', topic: this.roomTopic, messages: history, ...(more ? { more: true } : {}) })
    }
    for (const item of held) {
      if (typeof item === 'string' || Buffer.isBuffer(item)) { this.write(item); continue }
      if (item.topic === this.roomTopic && item.seq !== undefined && item.seq <= lastSeq) continue
      this.sendMessage(item)
    }
  }

  writeJson (obj: unknown): void {
    if (!this.isText) this.write(JSON.stringify(obj))
  }

  /** Writes a text frame; a Buffer is UTF-8 JSON encoded once and shared by many sessions. */
  write (data: string | Buffer): void {
    if (this.closed) return
    if (this.#held) {
      this.#held.push(data)
      this.#heldBytes += data.length
      if (this.#heldBytes > this.#hwm) this.#onSlow(this)
      return
    }
    this.#send(data)
  }

  #send (data: string | Buffer): void {
    if (this.closed) return
    // Never let one reader that stopped reading grow our memory: past the mark, it goes.
    if (this.ws.bufferedAmount > this.#hwm) {
      this.#onSlow(this)
      return
    }
    corkUntilNextTick(this.ws)
    if (typeof data === 'string') this.ws.send(data)
    else this.ws.send(data, { binary: false })
  }

  /**
   * Resolves once what is queued to the client is under half the slow-consumer mark, so
   * a replay streams at the client's pace instead of tripping the mark; false if the
   * session closed meanwhile.
   */
  async drained (): Promise<boolean> {
    while (!this.closed && this.ws.bufferedAmount > this.#hwm / 2) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    return !this.closed
  }

  close (code: number = WS_CLOSE.NORMAL, reason = ''): void {
    if (this.closed) return
    this.closed = true
    try { this.ws.close(code, reason) } catch { this.ws.terminate() }
  }
}
