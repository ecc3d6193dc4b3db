import { createRequire } from 'node:module'
import { randomBytes, randomUUID } from 'node:crypto'
import MQEmitterRedis from 'mqemitter-redis'
import { decodePacket, type RawPacket } from '../bridge/message.js'
import { SEQ_PROPERTY } from '../bridge/origin.js'
import { SEQ_WIDTH, type RedisHistory } from '../history/redis-history.js'
import type { FilterSet } from '../topics/topic-match.js'
import type { RedisLink } from './redis-link.js'
import { endConnection } from './redis-link.js'

type Log = (level: 'info' | 'warn' | 'error', msg: string, err?: unknown) => void
type Done = (err?: Error) => void

/** What Aedes hands the emitter: its Packet (a plain object for msgpack). */
export interface EmittedPacket {
  topic: string
  payload: Buffer | string
  qos?: number
  retain?: boolean
  clientId?: string
  properties?: { userProperties?: Record<string, string | string[]> } | undefined
  [k: string]: unknown
}

// mqemitter-redis encodes each message as msgpack {id, msg}; a logged message is
// encoded here the same way, so every node decodes it with the library's own handler.
// Resolved from mqemitter-redis itself, so it is the very copy that will decode it.
const requireFromEmitter = createRequire(createRequire(import.meta.url).resolve('mqemitter-redis'))
const msgpack = requireFromEmitter('msgpack-lite') as { encode (value: unknown): Buffer }

/**
 * Messages held while Redis is away or the nodes resynchronise, at most. Past it a
 * held publish fails: an MQTT client loses its connection without a PUBACK and sends
 * again later; nothing is dropped silently. Bounds the memory an outage can take.
 * @default 10000
 */
const MAX_HELD = 10_000

/** The gate: open (pass), syncing (hold everything), down (hold, but drop MQTT QoS 0). */
export type GateState = 'open' | 'syncing' | 'down'

/** What the emitter did while Redis was away, for /api/stats and the fault test. */
export interface GateCounters {
  /** QoS 0 publishes from MQTT clients dropped because Redis was down. */
  droppedQos0: number
  /** Publishes refused because too many were already held. */
  refused: number
  /** Publishes held and released after Redis came back. */
  released: number
}

type Emitter = ReturnType<typeof MQEmitterRedis> & {
  closing?: boolean
  closed?: boolean
  state: NodeJS.EventEmitter
  _close (cb: () => void): void
}

/**
 * The cluster's emitter: mqemitter-redis on the node's own connections, with two
 * additions on the way out.
 *
 * - A gate. While Redis is down, QoS 0 publishes from MQTT clients are dropped (they
 *   would otherwise pile up in memory; QoS 0 promises nothing) and everything else is
 *   held in order; after Redis is back and every node resubscribed (PeerSync), the
 *   held messages go out in the order they came.
 * - Logged topics (chat/# by default) are numbered, stored and published in one Redis
 *   script (RedisHistory.appendAndPublish), so every node receives them with their
 *   `seq` stamped and in `seq` order.
 */
export class ClusterEmitter {
  readonly mq: Emitter
  readonly counters: GateCounters = { droppedQos0: 0, refused: 0, released: 0 }
  readonly #history: RedisHistory
  readonly #logged: FilterSet
  readonly #baseEmit: (packet: EmittedPacket, done: Done) => void
  readonly #link: RedisLink
  #state: GateState = 'open'
  #held: Array<{ packet: EmittedPacket, done: Done }> = []
  #beforeClose: (() => void) | undefined

  constructor (link: RedisLink, history: RedisHistory, logged: FilterSet, log: Log) {
    this.#link = link
    this.#history = history
    this.#logged = logged
    // Aedes's own emitter matches empty levels [MQTT-4.7.1-3]; so must this one.
    this.mq = MQEmitterRedis({ pubConn: link.pub, subConn: link.sub, matchEmptyLevels: true, concurrency: 100 } as never) as Emitter
    // mqemitter-redis re-emits connection errors on `state`: with no listener, one
    // refused reconnect would end the process. RedisLink reports outages once.
    this.mq.state.on('error', () => {})
    const emit = this.mq.emit
    this.#baseEmit = (packet, done) => emit.call(this.mq, packet as never, done)
    this.mq.emit = ((packet: EmittedPacket, done?: Done) => this.#emit(packet, done ?? ((err) => { if (err) log('warn', 'cluster: publish failed', err) }))) as never
    this.mq.close = ((cb?: () => void) => { this.#close(cb ?? (() => {})) }) as never
  }

  get state (): GateState { return this.#state }
  get held (): number { return this.#held.length }

  /** Publishes past the gate (the nodes' own sync messages). */
  rawEmit (packet: EmittedPacket, done: Done = () => {}): void { this.#baseEmit(packet, done) }

  /** Runs just before the emitter's connections end (a goodbye to the other nodes). */
  beforeClose (fn: () => void): void { this.#beforeClose = fn }

  /** Redis is gone: hold from now on. */
  down (): void { this.#state = 'down' }

  /** Redis is back, the nodes are resynchronising: hold everything a little longer. */
  syncing (): void { this.#state = 'syncing' }

  /** Everyone hears again: release what was held, in order, then pass. */
  open (): void {
    this.#state = 'open'
    const held = this.#held
    this.#held = []
    this.counters.released += held.length
    for (const h of held) this.#send(h.packet, h.done)
  }

  #emit (packet: EmittedPacket, done: Done): void {
    if (this.#state === 'open' && this.#held.length === 0) return this.#send(packet, done)
    if (this.#state === 'down' && packet.clientId !== undefined && !packet.qos) {
      this.counters.droppedQos0++
      return done()
    }
    if (this.#held.length >= MAX_HELD) {
      this.counters.refused++
      return done(new Error(`more than ${MAX_HELD} messages are waiting for Redis`))
    }
    this.#held.push({ packet, done })
  }

  #send (packet: EmittedPacket, done: Done): void {
    if (!this.#isLogged(packet)) return this.#baseEmit(packet, done)
    const marker = randomBytes(SEQ_WIDTH / 2).toString('hex')
    const props = packet.properties ?? {}
    const msg = { ...packet, properties: { ...props, userProperties: { ...props.userProperties, [SEQ_PROPERTY]: marker } } }
    let envelope: Buffer
    let record
    try {
      envelope = msgpack.encode({ id: randomUUID(), msg })
      record = decodePacket(packet as RawPacket).record()
    } catch (err) {
      return done(err as Error)
    }
    this.#history.appendAndPublish(packet.topic, envelope, marker, record).then(() => done(), (err: Error) => done(err))
  }

  #isLogged (packet: EmittedPacket): boolean {
    return packet.payload.length > 0 && this.#logged.matches(packet.topic)
  }

  #close (cb: () => void): void {
    if (this.mq.closing || this.mq.closed) return cb()
    this.mq.closing = true
    this.#link.beginClose()
    for (const h of this.#held.splice(0)) h.done(new Error('the gateway is closing'))
    try { this.#beforeClose?.() } catch {}
    Promise.allSettled([endConnection(this.#link.pub, 1000), endConnection(this.#link.sub, 1000)])
      .then(() => this.mq._close(cb))
  }
}
