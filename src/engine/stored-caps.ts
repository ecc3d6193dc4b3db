import type { Aedes } from 'aedes'
import type { Stats } from '../core/stats.js'
import type { LogFn } from '../core/types.js'
import { FusionError } from '../core/errors.js'
import { readOrigin } from '../core/origin.js'
import { throttledLog } from '../core/log-throttle.js'
import { afterEnqueue, allRetained, countQueued, dropOldestQueued, guardRetained, liveClient, persistenceOf, type RetainedLike } from './internals/index.js'

export interface StoredCaps {
  /** Retained topics kept, presence topics aside (issue 13, item 7). */
  readonly maxRetained: number
  /** Bytes of retained topics and payloads kept, presence topics aside. */
  readonly maxRetainedBytes: number
  /** Messages queued per offline persistent session; the oldest go first. */
  readonly maxQueued: number
}

const sizeOf = (p: RetainedLike): number => Buffer.byteLength(p.topic) + (typeof p.payload === 'string' ? Buffer.byteLength(p.payload) : p.payload.length)

// presence/<id> is bounded on its own (live clients plus --presence-offline-keep, see
// presence-prune.ts) and must never be refused: a client's "online" would be lost.
const isPresence = (topic: string): boolean => topic.startsWith('presence/') && topic.indexOf('/', 9) < 0

/**
 * Caps what the broker keeps (issue 13, item 7).
 *
 * Retained messages: a NEW retained topic over --max-retained, or a retained message that
 * would take the bytes over --max-retained-bytes, is not stored (replacing or clearing a
 * topic always is, within the bytes). The oldest are not evicted: a retained message is a
 * "last known value" someone relies on, and evicting would let a flood of junk topics
 * push out real ones. From /ws and HTTP the publish is refused with STORE_FULL (nothing
 * is delivered); MQTT 3.1.1 has no way to refuse one message, so there it is delivered to
 * the subscribers online now and not retained. Counted in `stored.retainedRefused`.
 *
 * Offline queues: after each enqueue for a persistent session that is offline, a queue
 * over --max-queued loses its oldest messages (as Mosquitto's max_queued_messages,
 * which drops instead the newest). Counted in `stored.queueDropped`.
 */
export async function capStoredState (broker: Aedes, caps: StoredCaps, stats: Stats, log: LogFn): Promise<void> {
  const persistence = persistenceOf(broker)
  const noisy = throttledLog(log)
  const sizes = new Map<string, number>()
  const gauge = stats.stored
  for await (const p of allRetained(persistence)) {
    if (isPresence(p.topic)) continue
    const size = sizeOf(p)
    sizes.set(p.topic, size)
    gauge.retainedMessages++
    gauge.retainedBytes += size
  }
  guardRetained(persistence, (packet) => {
    // presence/<id> is bounded by presence-prune.ts and is neither capped nor counted here.
    if (isPresence(packet.topic)) return 'store'
    const before = sizes.get(packet.topic)
    if (packet.payload.length === 0) {
      if (before !== undefined) { sizes.delete(packet.topic); gauge.retainedMessages--; gauge.retainedBytes -= before }
      return 'store'
    }
    const size = sizeOf(packet)
    const count = gauge.retainedMessages + (before === undefined ? 1 : 0)
    const bytes = gauge.retainedBytes - (before ?? 0) + size
    if ((before === undefined && count > caps.maxRetained) || bytes > caps.maxRetainedBytes) return 'refuse'
    if (before === undefined) gauge.retainedMessages++
    gauge.retainedBytes += size - (before ?? 0)
    sizes.set(packet.topic, size)
    return 'store'
  }, (packet) => {
    stats.stored.retainedRefused++
    noisy('warn', `broker: retained message on ${packet.topic} not kept: the retained cap is reached (--max-retained ${caps.maxRetained}, --max-retained-bytes ${caps.maxRetainedBytes})`)
    const door = readOrigin(packet as never)?.door
    // /ws and HTTP can be told: the publish fails before anything is delivered.
    if (door === 'ws' || door === 'http') throw new FusionError('STORE_FULL', `the retained message cap is reached (${caps.maxRetained} topics, ${caps.maxRetainedBytes} bytes): not published`)
  })

  // The queue length of each offline session, counted once when it goes offline (at its
  // first enqueue) and then kept by the enqueues and drops; forgotten when it connects.
  const counts = new Map<string, number>()
  const chains = new Map<string, Promise<void>>()
  const trim = async (clientId: string): Promise<void> => {
    if (liveClient(broker, clientId)) { counts.delete(clientId); return }
    const known = counts.get(clientId)
    const count = known === undefined ? await countQueued(persistence, clientId, Number.MAX_SAFE_INTEGER) : known + 1
    const dropped = count > caps.maxQueued ? await dropOldestQueued(persistence, clientId, count - caps.maxQueued) : 0
    counts.set(clientId, count - dropped)
    if (dropped) {
      stats.stored.queueDropped += dropped
      noisy('warn', `broker: the offline queue of ${clientId} is full (--max-queued ${caps.maxQueued}): dropped its oldest message`)
    }
  }
  afterEnqueue(persistence, (clientIds) => {
    for (const clientId of clientIds) {
      if (liveClient(broker, clientId)) continue
      const next = (chains.get(clientId) ?? Promise.resolve()).then(() => trim(clientId)).catch((err: Error) => {
        counts.delete(clientId)
        noisy('warn', `broker: the offline queue of ${clientId} could not be trimmed: ${err.message}`)
      })
      chains.set(clientId, next)
      void next.then(() => { if (chains.get(clientId) === next) chains.delete(clientId) })
    }
  })
  const forget = (client: { id: string }): void => { counts.delete(client.id) }
  broker.on('client', forget)
  broker.on('clientDisconnect', forget)
}
