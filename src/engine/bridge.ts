import type { Aedes, AedesPublishPacket } from 'aedes'
import { FusionError } from '../core/errors.js'
import type { HistoryStore } from '../core/history/history-store.js'
import { wildcardSkipsDollar } from '../core/topics/topic-match.js'
import { FilterSet } from '../core/topics/filter-set.js'
import { decodePacket, type FusionMessage, type RawPacket } from './message.js'
import { readOrigin, stampOrigin, type Origin } from '../core/origin.js'
import type { DoorLatency } from '../core/door-latency.js'
import type { Door } from '../core/types.js'
import { brokerPersistence } from './internals/index.js'

/** Something that receives messages: a hub session, the presence tracker, the history. */
export interface Sink {
  deliver (msg: FusionMessage, filter: string): void
}

interface FilterEntry {
  readonly sinks: Set<Sink>
  readonly deliver: (packet: AedesPublishPacket, cb: () => void) => void
  ready: Promise<void>
}

export interface BridgeOptions {
  /**
   * Runs before every publish from the hub or HTTP and throws to refuse it (a cluster
   * node whose Redis is away), so the sender gets an error instead of a silent loss.
   */
  readonly admit?: (() => void) | undefined
  /** Times each message from the door that read it to its last delivery (core/door-latency.ts). */
  readonly latency?: DoorLatency | undefined
}

export interface PublishRequest {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1
  readonly retain: boolean
  readonly origin: Origin
  /** The door that read the message and when (performance.now()), for the door latency histogram. */
  readonly received?: { readonly door: Door, readonly at: number } | undefined
}

/**
 * Hub <-> broker. Every message goes through Aedes: `publish` injects with an origin
 * stamp; `subscribe` registers one broker subscription per distinct filter
 * (reference-counted) and fans each packet out to the sinks on it. A packet is
 * decoded once, however many filters and sinks it reaches, and chat messages are
 * appended to the history log in that same step, so live frames and history agree
 * on `seq` and `ts`. On a cluster node the accepting node has already numbered and
 * stored them (see HistoryStore.numbersAtIngress); the number comes in the stamp.
 */
export class Bridge {
  readonly #broker: Aedes
  readonly #history: HistoryStore
  readonly #admit: (() => void) | undefined
  readonly #latency: DoorLatency | undefined
  readonly #filters = new Map<string, FilterEntry>()
  // Aedes hands every listener of one publish the same packet object.
  readonly #decoded = new WeakMap<object, FusionMessage>()
  // Aedes copies our `properties` object by reference into its packet: the key that
  // lets publish() find the history write of the message it just sent.
  readonly #storedByStamp = new WeakMap<object, Promise<void>>()
  readonly #logged: FilterSet
  #closed = false

  /** `logged`: the filters whose messages go to the history log (chat/# by default). */
  constructor (broker: Aedes, history: HistoryStore, logged: readonly string[] = ['chat/#'], opts: BridgeOptions = {}) {
    this.#broker = broker
    this.#history = history
    this.#admit = opts.admit
    this.#latency = opts.latency
    this.#logged = new FilterSet(logged)
  }

  /** Subscribes the history log to every logged filter, so they are kept with no listener. */
  async startLogging (): Promise<void> {
    const sink: Sink = { deliver () {} } // describe() appends; nothing else to do
    await Promise.all(this.#logged.filters.map((f) => this.subscribe(f, sink)))
  }

  /** The decoded form of a broker packet, shared by every recipient of that publish. */
  describe (packet: RawPacket): FusionMessage {
    let msg = this.#decoded.get(packet)
    if (msg) return msg
    msg = decodePacket(packet)
    this.#decoded.set(packet, msg)
    if (msg.payload.length > 0 && this.#logged.matches(msg.topic)) {
      if (this.#history.numbersAtIngress) {
        // Numbered and stored by the node that accepted it; the number rides in the stamp.
        msg.seq = readOrigin(packet)?.seq
        if (msg.seq !== undefined) this.#history.noteDelivered(msg.topic, msg.seq)
        return msg
      }
      const { seq, stored } = this.#history.append(msg.record())
      msg.seq = seq > 0 ? seq : undefined // 0: not logged (the history's topic cap)
      msg.stored = stored
      stored.catch(() => {}) // the publisher sees the failure through publish()
      if (packet.properties) this.#storedByStamp.set(packet.properties, stored)
    }
    return msg
  }

  /**
   * Another write a publish waits for before it resolves (bound late): the upstream queue
   * of a QoS 1 message an out rule took, so a /ws or HTTP ack means stored there too.
   */
  alsoStored: ((stamp: object) => Promise<void> | undefined) | undefined

  /** The history write of the message stamped with `stamp`, if it is a logged one. */
  storedFor (stamp: object): Promise<void> | undefined { return this.#storedByStamp.get(stamp) }

  /** Publishes into the topic space; resolves once the broker took it and the log stored it. */
  publish (req: PublishRequest): Promise<void> {
    if (this.#closed) return Promise.reject(new FusionError('SHUTTING_DOWN', 'the gateway is closing'))
    try { this.#admit?.() } catch (err) { return Promise.reject(err) }
    const packet = { cmd: 'publish' as const, topic: req.topic, payload: req.payload, qos: req.qos, retain: req.retain, dup: false }
    stampOrigin(packet as RawPacket, req.origin)
    const stamp = (packet as RawPacket).properties as object
    if (req.received) this.#latency?.received(stamp, req.received.door, req.received.at)
    return new Promise<void>((resolve, reject) => {
      this.#broker.publish(packet, (err?: Error) => {
        // A cap's own refusal (STORE_FULL) keeps its code: the client is told which limit.
        if (err) return reject(err instanceof FusionError && err.code === 'STORE_FULL' ? err : new FusionError('STORE_FAILED', `the broker refused the message: ${err.message}`, { cause: err }))
        const stored = bothStored(this.#storedByStamp.get(stamp), this.alsoStored?.(stamp))
        if (stored) stored.then(resolve, reject)
        else resolve()
      })
    })
  }

  /** Adds `sink` on `filter`; resolves once the broker subscription is active. */
  subscribe (filter: string, sink: Sink): Promise<void> {
    let entry = this.#filters.get(filter)
    if (!entry) {
      const sinks = new Set<Sink>()
      const deliver = (packet: AedesPublishPacket, cb: () => void): void => {
        // Called for every matching publish; it must call cb() at once or the router stalls.
        if (!wildcardSkipsDollar(filter, packet.topic)) {
          const msg = this.describe(packet as unknown as RawPacket)
          for (const s of sinks) s.deliver(msg, filter)
        }
        cb()
      }
      const created: FilterEntry = {
        sinks,
        deliver,
        ready: new Promise<void>((resolve, reject) => {
          this.#broker.subscribe(filter, deliver as never, ((err?: Error) => (err ? reject(err) : resolve())) as () => void)
        })
      }
      entry = created
      this.#filters.set(filter, entry)
    }
    entry.sinks.add(sink)
    return entry.ready
  }

  /** Removes `sink` from `filter`; the broker subscription goes with the last sink. */
  unsubscribe (filter: string, sink: Sink): void {
    const entry = this.#filters.get(filter)
    if (!entry || !entry.sinks.delete(sink) || entry.sinks.size > 0) return
    this.#filters.delete(filter)
    entry.ready.then(() => this.#broker.unsubscribe(filter, entry.deliver as never, () => {}), () => {})
  }

  /** How many distinct filters the broker holds for the hub (for stats and tests). */
  get filterCount (): number { return this.#filters.size }

  /** Retained messages matching `filter`, decoded as replays (retain: true). */
  async retained (filter: string): Promise<FusionMessage[]> {
    const out: FusionMessage[] = []
    for await (const item of brokerPersistence(this.#broker).createRetainedStream(filter)) {
      const packet = item as RawPacket
      if (wildcardSkipsDollar(filter, packet.topic)) continue
      out.push(decodePacket(packet, { retained: true }))
    }
    return out
  }

  /** Stops accepting publishes; safe to call twice. */
  close (): void { this.#closed = true }
}

/** Both writes, either, or none. */
export function bothStored (a: Promise<void> | undefined, b: Promise<void> | undefined): Promise<void> | undefined {
  return a && b ? Promise.all([a, b]).then(() => {}) : a ?? b
}
