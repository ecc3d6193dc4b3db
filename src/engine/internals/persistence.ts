import { Readable } from 'node:stream'
import msgpack from 'msgpack-lite'
import type { AbstractLevel } from 'abstract-level'
import memoryPersistence from 'aedes-persistence'
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js'
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js'

// The persistences Aedes 1.2 calls through their async API (aedes-persistence 11's
// abstract interface). Their methods are public, but replacing them on an instance, and
// reading aedes-persistence-level's keys behind its back, depends on how each version
// stores and how Aedes consumes: that is why it lives here.

/** A retained message as the persistences store it. */
export interface RetainedPacket { topic: string, payload: Buffer | string, [k: string]: unknown }

/** One offline subscription Aedes hands to outgoingEnqueueCombi. */
export interface OfflineSub { clientId: string, qos: number }

type AnyLevel = AbstractLevel<any, any, any>

/** The embedded persistence: aedes-persistence-level on `db`, or aedes-persistence (memory) without one. */
export function createEmbeddedPersistence (db: AnyLevel | undefined): object {
  if (!db) return (memoryPersistence as unknown as () => object)()
  const persistence = new AsyncLevelPersistence(db) as unknown as { delWill (client: { id: string }): Promise<unknown> }
  // aedes-persistence-level 9's delWill reads the will (a LevelDB get and a msgpack
  // decode) to return it, then deletes it. Nothing uses what it returns: Aedes 1.2 calls
  // it on every CONNECT (connect.js storeWill), after every will it publishes
  // (client.js close, aedes.js checkAndPublish) and ignores the value, as the gateway
  // does. A get per call is a thread-pool job that costs the event loop 15-25 us on two
  // cores; 10,000 devices dropping at once made 10,000 of them (a CPU profile of
  // bench/storm.mjs put 148-264 ms of the drop there). Deleting the key is all that is
  // needed. Its key is persistence.js's willKey.
  persistence.delWill = async (client) => { await db.del(`${WILL}${encodeURIComponent(client.id)}`) }
  return persistence
}

// aedes-persistence-level 9 keeps each client's will under `will:<encoded client id>`.
const WILL = 'will:'

// aedes-persistence-level 9 keeps each retained message under `retained:<topic>`, its
// value the msgpack encoding of the packet (persistence.js, storeRetained).
const RETAINED = 'retained:'

/** Every retained topic aedes-persistence-level holds in `db`. */
export async function * levelRetainedTopics (db: AnyLevel): AsyncGenerator<string> {
  // `;` is the character after `:`: the range of every key under `retained:`.
  for await (const key of db.keys({ gte: RETAINED, lt: 'retained;' })) yield (key as string).slice(RETAINED.length)
}

/** The retained message aedes-persistence-level holds for `topic` in `db`, if any. */
export async function levelRetained (db: AnyLevel, topic: string): Promise<RetainedPacket | undefined> {
  const blob = await db.get(`${RETAINED}${topic}`, { valueEncoding: 'buffer' }) as Buffer | undefined
  return blob === undefined ? undefined : msgpack.decode(blob) as RetainedPacket
}

interface RetainedApi {
  storeRetained (packet: RetainedPacket): Promise<void>
  createRetainedStream (pattern: string): Readable
  createRetainedStreamCombi (patterns: string[]): Readable
}

/**
 * Replaces how `persistence` answers "retained messages matching these filters" (Aedes
 * asks on every SUBSCRIBE and pipes the answer: lib/handlers/subscribe.js) with
 * `lookup`, and tells `stored` about every retained message once the store has it.
 * `keepsPackets`: `stored` keeps the messages itself (the in-memory store), so the
 * persistence's own copy, which nothing would read any more, is not made: aedes-persistence
 * 11 keeps a copy of each retained packet in a private Map that only
 * createRetainedStream(Combi) read.
 */
export function answerRetainedWith (persistence: object, stored: (packet: RetainedPacket) => void, lookup: (patterns: string[]) => AsyncIterable<RetainedPacket>, keepsPackets = false): void {
  const p = persistence as RetainedApi
  const store = p.storeRetained.bind(p)
  p.storeRetained = keepsPackets
    ? async (packet: RetainedPacket) => { stored(packet) }
    : async (packet: RetainedPacket) => {
      await store(packet)
      stored(packet)
    }
  p.createRetainedStreamCombi = (patterns: string[]) => Readable.from(lookup(patterns))
  p.createRetainedStream = (pattern: string) => Readable.from(lookup([pattern]))
}

/**
 * Puts `copies` in front of what `persistence` queues for offline sessions: Aedes hands
 * outgoingEnqueueCombi every matching subscription and the packet at its published QoS;
 * `copies` says which subscriptions get which packet (each group is enqueued as Aedes
 * would have enqueued it). A persistence without outgoingEnqueueCombi is left alone.
 */
export function splitOfflineQueue (persistence: unknown, copies: <P extends { qos: number }>(subs: OfflineSub[], packet: P) => Array<[OfflineSub[], P]>): void {
  const p = persistence as { outgoingEnqueueCombi?: (subs: OfflineSub[], packet: { qos: number }) => Promise<unknown> }
  const enqueue = p.outgoingEnqueueCombi
  if (typeof enqueue !== 'function') return
  p.outgoingEnqueueCombi = function (subs, packet) {
    if (!subs || subs.length === 0) return enqueue.call(this, subs, packet)
    return Promise.all(copies(subs, packet).map(([list, copy]) => enqueue.call(this, list, copy)))
  }
}

/**
 * aedes-persistence-redis 12 with the streams Aedes 1.2 expects. Its stream methods
 * return async generators, but Aedes pipes the retained messages of a SUBSCRIBE
 * (`stream.pipe(...)` in lib/handlers/subscribe.js): an MQTT client subscribing on a
 * cluster node would crash the process. The embedded persistences return
 * `Readable.from(...)`; so does this one.
 */
export class RedisPersistence extends AsyncRedisPersistence {
  override createRetainedStreamCombi (patterns: string[]): Readable { return Readable.from(super.createRetainedStreamCombi(patterns)) }
  override createRetainedStream (pattern: string): Readable { return Readable.from(super.createRetainedStream(pattern)) }
  override outgoingStream (client: unknown): Readable { return Readable.from(super.outgoingStream(client)) }
  override streamWill (brokers: unknown): Readable { return Readable.from(super.streamWill(brokers)) }
  override getClientList (topic: string): Readable { return Readable.from(super.getClientList(topic)) }
}
