import { randomBytes } from 'node:crypto'

/** What PeerSync needs of the emitter: a subscription and an emit that no gate holds. */
export interface SyncChannel {
  on (topic: string, fn: (packet: { topic: string, payload: Buffer | string }, cb: () => void) => void, done?: () => void): unknown
  rawEmit (packet: { topic: string, payload: Buffer, qos: 0, retain: false }, cb?: (err?: Error) => void): void
}

interface SyncMessage { k: 'hello' | 'alive' | 'ping' | 'pong' | 'bye' | 'reaped', from: string, to?: string, n?: string }

/** Every node says it is alive this often. @default 2000 */
const ALIVE_MS = 2000
/**
 * A node not heard from in this many rounds (counted only while our own connections
 * are up) is gone: 8 to 10 s. Long enough that a busy event loop is not taken for a
 * dead node; a node wrongly declared gone repairs what was done about it ('reaped').
 * @default 5
 */
const MISSED_ROUNDS = 5
/** Pings are repeated this often during a barrier, for nodes still reconnecting. @default 150 */
const PING_EVERY_MS = 150

const TOPIC_FILTER = '$SYS/+/fusion/sync'

/**
 * Knows the other nodes, and after Redis comes back tells when every known node
 * (this one included) is subscribed again.
 *
 * Redis pub/sub keeps nothing: a message published while some node's subscriber
 * connection is still reconnecting never reaches that node. So a node that held QoS 1
 * messages during an outage releases them only after a ping has gone round: each node
 * answers a ping from its subscriber connection, and its channel and pattern
 * subscriptions are restored in one SUBSCRIBE and one PSUBSCRIBE before anything else,
 * so an answer proves that node hears everything again. A node that stays silent (it
 * died meanwhile) holds nobody back longer than the barrier's timeout.
 */
export class PeerSync {
  readonly #id: string
  readonly #chan: SyncChannel
  readonly #peers = new Map<string, number>() // node id -> rounds missed
  readonly #answered = new Set<string>()
  #nonce = ''
  #onAnswer: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  #connected = false
  #onGone: ((id: string, how: 'bye' | 'silent') => void) | undefined
  #onReaped: (() => void) | undefined
  #onSeen: ((id: string) => void) | undefined

  constructor (id: string, chan: SyncChannel) {
    this.#id = id
    this.#chan = chan
  }

  /** Subscribes to the sync topic and says hello; resolves once subscribed. */
  async start (): Promise<void> {
    await new Promise<void>((resolve) => this.#chan.on(TOPIC_FILTER, (packet, cb) => { this.#receive(packet); cb() }, resolve))
    this.#connected = true
    this.#send({ k: 'hello', from: this.#id })
    this.#timer = setInterval(() => this.#round(), ALIVE_MS)
    this.#timer.unref()
  }

  /** How many nodes are known to be up, this one included. */
  get nodes (): number { return this.#peers.size + 1 }

  /** The ids of the other nodes known to be up. */
  get peers (): string[] { return [...this.#peers.keys()] }

  /** Called when a node leaves (said bye) or falls silent. */
  onGone (fn: (id: string, how: 'bye' | 'silent') => void): void { this.#onGone = fn }

  /** Called for every message from another node that is up. */
  onSeen (fn: (id: string) => void): void { this.#onSeen = fn }

  /** Called when another node took this one for gone and cleaned up after it. */
  onReaped (fn: () => void): void { this.#onReaped = fn }

  /** Tells `id` (if it is alive after all) that it was taken for gone. */
  reaped (id: string): void { this.#send({ k: 'reaped', from: this.#id, to: id }) }

  /** Whether our own connections are up: rounds only count while they are. */
  setConnected (up: boolean): void { this.#connected = up }

  /**
   * Resolves once this node and every known peer have answered a ping sent now, or
   * after `timeoutMs`; true when everyone answered.
   */
  async barrier (timeoutMs: number): Promise<boolean> {
    this.#nonce = randomBytes(6).toString('hex')
    this.#answered.clear()
    const ping = (): void => this.#send({ k: 'ping', from: this.#id, n: this.#nonce })
    let every: NodeJS.Timeout | undefined
    let deadline: NodeJS.Timeout | undefined
    const all = await new Promise<boolean>((resolve) => {
      this.#onAnswer = () => {
        if (this.#answered.has(this.#id) && this.peers.every((p) => this.#answered.has(p))) resolve(true)
      }
      deadline = setTimeout(() => resolve(false), timeoutMs)
      every = setInterval(ping, PING_EVERY_MS)
      ping()
    })
    clearInterval(every)
    clearTimeout(deadline)
    this.#onAnswer = undefined
    return all
  }

  /** Says goodbye, so the others stop waiting for this node at once. */
  close (): void {
    clearInterval(this.#timer)
    if (this.#connected) this.#send({ k: 'bye', from: this.#id })
  }

  #round (): void {
    if (!this.#connected) return
    for (const [id, missed] of this.#peers) {
      if (missed + 1 >= MISSED_ROUNDS) {
        this.#peers.delete(id)
        this.#onGone?.(id, 'silent')
      } else {
        this.#peers.set(id, missed + 1)
      }
    }
    this.#send({ k: 'alive', from: this.#id })
  }

  #send (msg: SyncMessage): void {
    this.#chan.rawEmit({ topic: `$SYS/${this.#id}/fusion/sync`, payload: Buffer.from(JSON.stringify(msg)), qos: 0, retain: false }, () => {})
  }

  #receive (packet: { payload: Buffer | string }): void {
    let msg: SyncMessage
    try { msg = JSON.parse(packet.payload.toString()) as SyncMessage } catch { return }
    if (typeof msg.from !== 'string') return
    if (msg.from !== this.#id) {
      if (msg.k === 'bye') {
        this.#peers.delete(msg.from)
        this.#onGone?.(msg.from, 'bye')
      } else {
        this.#peers.set(msg.from, 0)
        this.#onSeen?.(msg.from)
      }
    }
    switch (msg.k) {
      case 'hello':
        if (msg.from !== this.#id) this.#send({ k: 'alive', from: this.#id })
        break
      case 'ping':
        if (msg.from === this.#id) this.#answer(this.#id, msg.n)
        else this.#send({ k: 'pong', from: this.#id, to: msg.from, n: msg.n })
        break
      case 'pong':
        if (msg.to === this.#id) this.#answer(msg.from, msg.n)
        break
      case 'bye':
        this.#onAnswer?.()
        break
      case 'reaped':
        if (msg.to === this.#id) this.#onReaped?.()
    }
  }

  #answer (from: string, nonce: string | undefined): void {
    if (nonce !== this.#nonce || !this.#onAnswer) return
    this.#answered.add(from)
    this.#onAnswer()
  }
}
