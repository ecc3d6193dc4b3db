import { randomBytes, randomUUID } from 'node:crypto'
import MQEmitterRedis from 'mqemitter-redis'
import { decodePacket, type RawPacket } from '../message.js'
import { SEQ_PROPERTY } from '../../core/origin.js'
import { FusionError } from '../../core/errors.js'
import type { NewHistoryRecord } from '../../core/history/history-store.js'
import { SEQ_WIDTH, type RedisHistory } from '../../core/history/redis-history.js'
import type { FilterSet } from '../../core/topics/filter-set.js'
import type { RedisLink } from './redis-link.js'
import { endConnection } from './redis-link.js'
import { emitterEnvelope, finishEmitterClose } from '../internals/index.js'

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

// mqemitter-redis drops a message id it has seen in the last minute. We encode the way it
// does (internals: emitter-envelope), so that a message sent again after a broken
// connection keeps its id.

/**
 * Messages held while Redis is away or the nodes resynchronise, at most. Past it a
 * held publish fails: an MQTT client loses its connection without a PUBACK and sends
 * again later; nothing is dropped silently. Bounds the memory an outage can take.
 * @default 10000
 */
const MAX_HELD = 10_000

/** The gate: open (pass), syncing (hold everything), down (hold, but drop MQTT QoS 0). */
export type GateState = 'open' | 'syncing' | 'down'

/** What the emitter did about outages, for /api/stats and the fault test. */
export interface GateCounters {
  /** QoS 0 publishes from MQTT clients dropped because Redis was down. */
  droppedQos0: number
  /** Publishes refused because too many were already held. */
  refused: number
  /** Publishes held during an outage and sent after it. */
  released: number
  /** Publishes sent again because the connection broke before Redis answered. */
  resent: number
}

type Emitter = ReturnType<typeof MQEmitterRedis> & {
  closing?: boolean
  closed?: boolean
  state: NodeJS.EventEmitter
}

interface Outgoing {
  readonly order: number
  readonly packet: EmittedPacket
  readonly done: Done
  /** Encoded once, so a resend is byte for byte the same message (same id). */
  readonly id: string
  envelope?: Buffer
  logged?: { marker: string, record: NewHistoryRecord }
  attempt: number
}

/**
 * The cluster's emitter: mqemitter-redis on the node's own connections (it subscribes
 * and delivers), with our own way out.
 *
 * - A gate. While Redis is down, QoS 0 publishes from MQTT clients are dropped (they
 *   would otherwise pile up in memory; QoS 0 promises nothing) and everything else is
 *   held in order; once Redis is back and every node has resubscribed (PeerSync), the
 *   held messages go out in the order they came.
 * - Messages in flight when the publishing connection broke are held again and resent
 *   after the resync, with the same id: a node that did get them drops the copy, one
 *   that did not gets it. (ioredis would resend them at once on reconnect, before the
 *   other nodes listen again: so its own resend is off on this connection.)
 * - Logged topics (chat/# by default) are numbered, stored and published in one Redis
 *   script (RedisHistory.appendAndPublish), so every node receives them with their
 *   `seq` stamped and in `seq` order.
 */
export class ClusterEmitter {
  readonly mq: Emitter
  readonly counters: GateCounters = { droppedQos0: 0, refused: 0, released: 0, resent: 0 }
  readonly #history: RedisHistory
  readonly #logged: FilterSet
  readonly #link: RedisLink
  #state: GateState = 'open'
  #held: Outgoing[] = []
  readonly #inflight = new Set<Outgoing>()
  #order = 0
  #beforeClose: (() => void) | undefined

  constructor (link: RedisLink, history: RedisHistory, logged: FilterSet) {
    this.#link = link
    this.#history = history
    this.#logged = logged
    // Aedes's own emitter matches empty levels [MQTT-4.7.1-3]; so must this one.
    this.mq = MQEmitterRedis({ pubConn: link.pub, subConn: link.sub, matchEmptyLevels: true, concurrency: 100 } as never) as Emitter
    // mqemitter-redis re-emits connection errors on `state`: with no listener, one
    // refused reconnect would end the process. RedisLink reports outages once.
    this.mq.state.on('error', () => {})
    this.mq.emit = ((packet: EmittedPacket, done?: Done) => this.#emit(packet, done ?? (() => {}))) as never
    this.mq.close = ((cb?: () => void) => { this.#close(cb ?? (() => {})) }) as never
    // An unsubscribe waits for Redis's answer, so while Redis is away every MQTT client
    // that disconnects would hang in Aedes's close (and the broker's close with it).
    // Locally the listener is gone at once; Redis follows when it is back.
    const removeListener = this.mq.removeListener.bind(this.mq)
    this.mq.removeListener = ((topic: string, fn: never, done?: () => void) => {
      if (!done || link.sub.status === 'ready') return removeListener(topic, fn, done)
      removeListener(topic, fn, () => {})
      setImmediate(done)
      return this.mq
    }) as never
    link.pub.on('close', () => this.#requeueInflight())
  }

  get state (): GateState { return this.#state }
  get held (): number { return this.#held.length }

  /** Publishes past the gate, at most once (the nodes' own sync messages). */
  rawEmit (packet: EmittedPacket, done: Done = () => {}): void {
    this.#link.pub.publish(packet.topic, emitterEnvelope(randomUUID(), packet)).then(() => done(), done)
  }

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
    for (const h of held) this.#send(h)
  }

  #emit (packet: EmittedPacket, done: Done): void {
    if (this.mq.closed || this.mq.closing) return done(new FusionError('SHUTTING_DOWN', 'the gateway is closing'))
    const item: Outgoing = { order: ++this.#order, packet, done, id: randomUUID(), attempt: 0 }
    if (this.#state === 'open' && this.#held.length === 0) return this.#send(item)
    if (this.#state === 'down' && packet.clientId !== undefined && !packet.qos) {
      this.counters.droppedQos0++
      return done()
    }
    if (this.#held.length >= MAX_HELD) {
      this.counters.refused++
      return done(new FusionError('STORE_FAILED', `more than ${MAX_HELD} messages are waiting for Redis`))
    }
    this.#held.push(item)
  }

  #send (item: Outgoing): void {
    const attempt = ++item.attempt
    let sent: Promise<unknown>
    try {
      sent = this.#isLogged(item.packet) ? this.#sendLogged(item) : this.#link.pub.publish(item.packet.topic, item.envelope ??= emitterEnvelope(item.id, item.packet))
    } catch (err) {
      return item.done(err as Error)
    }
    this.#inflight.add(item)
    // A reply for an attempt that was already requeued (connection broke) is ignored.
    const settle = (err?: Error): void => {
      if (item.attempt !== attempt || !this.#inflight.delete(item)) return
      // Failed because the connection broke: Redis may or may not have run it; send again.
      if (err && !this.mq.closing && this.#link.pub.status !== 'ready') return this.#requeue([item])
      item.done(err && new FusionError('STORE_FAILED', `Redis refused the message: ${err.message}`, { cause: err }))
    }
    sent.then(() => settle(), (err: Error) => settle(err))
  }

  #sendLogged (item: Outgoing): Promise<number> {
    if (!item.logged || !item.envelope) {
      const marker = randomBytes(SEQ_WIDTH / 2).toString('hex')
      const props = item.packet.properties ?? {}
      const msg = { ...item.packet, properties: { ...props, userProperties: { ...props.userProperties, [SEQ_PROPERTY]: marker } } }
      item.envelope = emitterEnvelope(item.id, msg)
      item.logged = { marker, record: decodePacket(item.packet as RawPacket).record() }
    }
    return this.#history.appendAndPublish(item.id, item.packet.topic, item.envelope, item.logged.marker, item.logged.record)
  }

  #isLogged (packet: EmittedPacket): boolean {
    return packet.payload.length > 0 && this.#logged.matches(packet.topic)
  }

  /** The publishing connection broke: what it had not answered goes back to the front of the queue. */
  #requeueInflight (): void {
    if (this.mq.closing || this.#inflight.size === 0) return
    const lost = [...this.#inflight]
    this.#inflight.clear()
    this.#requeue(lost)
  }

  /** Back into the held queue, in their original order among what is held. */
  #requeue (items: Outgoing[]): void {
    for (const item of items) item.attempt++
    this.counters.resent += items.length
    this.#held = [...this.#held, ...items].sort((x, y) => x.order - y.order)
    // Gone down and back up already (a blip): nobody else will release them.
    if (this.#state === 'open') this.open()
  }

  #close (cb: () => void): void {
    if (this.mq.closing || this.mq.closed) return cb()
    this.mq.closing = true
    this.#link.beginClose()
    const closing = new FusionError('SHUTTING_DOWN', 'the gateway is closing')
    for (const h of this.#held.splice(0)) h.done(closing)
    try { this.#beforeClose?.() } catch {}
    Promise.allSettled([endConnection(this.#link.pub, 1000), endConnection(this.#link.sub, 1000)])
      .then(() => {
        for (const item of this.#inflight) item.done(closing)
        this.#inflight.clear()
        finishEmitterClose(this.mq, cb)
      })
  }
}
