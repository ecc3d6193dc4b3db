import type { Aedes, Client, PublishPacket } from 'aedes'
import type { Readable } from 'node:stream'

// The stored-state hardening (issue 13 items 2, 6, 7, 13): rows deny-ignore, stored-caps
// and session-holder of the table in index.ts.

/** The persistence calls of the aedes-persistence API this file uses. */
export interface StoredPersistence {
  subscriptionsByClient (client: { id: string }): Promise<Array<{ topic: string, qos: number }>>
  removeSubscriptions (client: { id: string }, filters: string[]): Promise<unknown>
  createRetainedStream (pattern: string): Readable
  storeRetained (packet: RetainedLike): Promise<void>
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: unknown): Promise<unknown>
  outgoingStream (client: { id: string }): Readable
  outgoingUpdate (client: { id: string }, packet: QueuedLike): Promise<unknown>
  outgoingClearMessageId (client: { id: string }, packet: { messageId: number }): Promise<unknown>
}

export interface RetainedLike { topic: string, payload: Buffer | string, [k: string]: unknown }
interface QueuedLike { brokerId?: string, brokerCounter?: number, messageId?: number, [k: string]: unknown }

/** Aedes's connected clients by id. */
export function liveClient (broker: Aedes, clientId: string): Client | undefined {
  return (broker as unknown as { clients: Record<string, Client | undefined> }).clients[clientId]
}

/** The broker's persistence. */
export function persistenceOf (broker: Aedes): StoredPersistence {
  return (broker as unknown as { persistence: StoredPersistence }).persistence
}

const DENIED = Symbol('fusion.deniedPublish')

/** Marks a client's PUBLISH that the policy refused, for --deny-action ignore. */
export function markDenied (packet: PublishPacket): void {
  (packet as unknown as Record<symbol, boolean>)[DENIED] = true
}

/**
 * --deny-action ignore. Aedes's handlers/publish.js closes the connection on any error of
 * authorizePublish; on success it sends PUBACK (QoS 1) and then calls
 * `broker.publish(packet, client, done)`, or stores the QoS 2 packet, calls
 * `broker.publish` and sends PUBREC. authorizePublish lets a refused packet through
 * marked; this drops the marked packet before anything is retained, queued or routed,
 * and reports success, so the acknowledgement still goes and the connection stays
 * (Mosquitto and EMQX do the same).
 */
export function dropDeniedPublishes (broker: Aedes): void {
  const publish = broker.publish.bind(broker) as (packet: PublishPacket, client?: unknown, done?: (err?: Error) => void) => void
  ;(broker as unknown as { publish: typeof publish }).publish = function (packet, client, done) {
    if ((packet as unknown as Record<symbol, boolean>)[DENIED]) {
      const cb = typeof client === 'function' ? client as (err?: Error) => void : done
      cb?.()
      return
    }
    publish(packet, client, done)
  }
}

/** What the retained cap decides for one store: keep it, or refuse it. */
export type RetainedVerdict = 'store' | 'refuse'

/**
 * Puts `decide` in front of the persistence's storeRetained (outermost, after the retained
 * index). A refused packet is not stored; `refused(packet)` says what the publish does
 * then (resolve: delivered live but not retained; throw: the publish fails).
 */
export function guardRetained (persistence: StoredPersistence, decide: (packet: RetainedLike) => RetainedVerdict, refused: (packet: RetainedLike) => void): void {
  const store = persistence.storeRetained.bind(persistence)
  persistence.storeRetained = async (packet) => {
    if (decide(packet) === 'refuse') return refused(packet)
    await store(packet)
  }
}

/** Every retained message the persistence holds (its own stream, not the `$` topics). */
export async function * allRetained (persistence: StoredPersistence): AsyncGenerator<RetainedLike> {
  for await (const packet of persistence.createRetainedStream('#')) yield packet as RetainedLike
}

/**
 * After each offline enqueue, `after(clientIds)` runs with the sessions that got a copy.
 * The queue cap itself uses the public persistence calls (trimQueue below).
 */
export function afterEnqueue (persistence: StoredPersistence, after: (clientIds: string[]) => void): void {
  const enqueue = persistence.outgoingEnqueueCombi.bind(persistence)
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const result = await enqueue(subs, packet)
    if (subs && subs.length) after(subs.map((s) => s.clientId))
    return result
  }
}

// A message id no MQTT packet has ([MQTT-2.3.1-1]: 1..65535): used to address one queued
// message that was never sent (and so has no id) through outgoingUpdate, then remove it.
const UNSENT_ID = 0

/**
 * Removes the `excess` oldest queued messages of `clientId`; returns how many went. Reads
 * the queue in the store's order (oldest first for one broker id) and stops after
 * `excess`. A message already sent once has its id and is cleared by it; one never sent
 * is given the id 0 with outgoingUpdate, then cleared by that id (both stores match on it).
 */
export async function dropOldestQueued (persistence: StoredPersistence, clientId: string, excess: number): Promise<number> {
  const client = { id: clientId }
  const oldest: QueuedLike[] = []
  if (excess <= 0) return 0
  for await (const p of persistence.outgoingStream(client)) {
    oldest.push(p as QueuedLike)
    if (oldest.length >= excess) break
  }
  let dropped = 0
  for (const p of oldest) {
    if (typeof p.messageId === 'number' && p.messageId > 0) {
      await persistence.outgoingClearMessageId(client, { messageId: p.messageId })
    } else {
      await persistence.outgoingUpdate(client, { ...p, messageId: UNSENT_ID })
      await persistence.outgoingClearMessageId(client, { messageId: UNSENT_ID })
    }
    dropped++
  }
  return dropped
}

/** How many messages are queued for `clientId`, counting at most `upTo`. */
export async function countQueued (persistence: StoredPersistence, clientId: string, upTo: number): Promise<number> {
  let n = 0
  for await (const _ of persistence.outgoingStream({ id: clientId })) { if (++n >= upTo) break }
  return n
}
