import type { Door } from './types.js'
import { SOURCES, type Source } from './admit.js'
import { DoorLatency } from './door-latency.js'

export const DOORS: readonly Door[] = ['mqtt', 'mqtt-ws', 'ws', 'http']

export interface DoorCounters {
  connections: number
  connectionsTotal: number
  messagesIn: number
  messagesOut: number
  bytesIn: number
  bytesOut: number
}

export type DropReason = 'slowConsumer' | 'tooLarge' | 'rateLimited' | 'aclDenied' | 'badInput' | 'storeFailed'

export interface StoredCounters {
  /** Retained topics held now (gauge). */
  retainedMessages: number
  /** Bytes of retained topics and payloads held now (gauge). */
  retainedBytes: number
  /** Retained messages not kept: --max-retained or --max-retained-bytes reached. */
  retainedRefused: number
  /** Messages dropped from offline queues over --max-queued (oldest first). */
  queueDropped: number
  /** Messages not logged: a new topic over --history-max-topics. */
  historyTopicsRefused: number
  /** Retained presence of offline clients cleared beyond --presence-offline-keep. */
  presencePruned: number
  /** CONNECTs refused with CONNACK 5: the client id's session belongs to another user. */
  takeoverRefused: number
  /** Deliveries dropped: the receiver may not read the topic (now). */
  forwardDenied: number
  /** Stored subscriptions of offline sessions removed by a reload. */
  offlineRevoked: number
}

/**
 * Counters for `/api/stats` and `/metrics`. Plain numbers bumped on the hot path;
 * nothing is computed until somebody asks.
 */
export class Stats {
  readonly startedAt = Date.now()
  readonly doors: Record<Door, DoorCounters>
  readonly dropped: Record<DropReason, number> = {
    slowConsumer: 0, tooLarge: 0, rateLimited: 0, aclDenied: 0, badInput: 0, storeFailed: 0
  }

  /**
   * Stored state and its caps (docs/SECURITY.md, "Stored state"): retainedMessages and
   * retainedBytes are gauges, the rest count events since start.
   */
  readonly stored: StoredCounters = {
    retainedMessages: 0,
    retainedBytes: 0,
    retainedRefused: 0,
    queueDropped: 0,
    historyTopicsRefused: 0,
    presencePruned: 0,
    takeoverRefused: 0,
    forwardDenied: 0,
    offlineRevoked: 0
  }

  /** MQTT publishes the policy refused, by what --deny-action did: acknowledged and dropped, or disconnected. */
  readonly denied = { ignored: 0, disconnected: 0 }

  /** The gateway's own share of each message's trip, per door (door-latency.ts). */
  readonly latency = new DoorLatency(DOORS)

  /** Messages `admit` let in, by source (core/admit.ts). */
  readonly admitted = Object.fromEntries(SOURCES.map((s) => [s, 0])) as Record<Source, number>

  constructor () {
    const make = (): DoorCounters => ({ connections: 0, connectionsTotal: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 })
    this.doors = { mqtt: make(), 'mqtt-ws': make(), ws: make(), http: make() }
  }

  opened (door: Door): void { const d = this.doors[door]; d.connections++; d.connectionsTotal++ }
  closed (door: Door): void { this.doors[door].connections-- }

  /** A JSON-ready snapshot. */
  snapshot (extra: Record<string, unknown> = {}): Record<string, unknown> {
    const doors = structuredClone(this.doors)
    // The byte counters above only grow when a socket closes; `extra.bytes` includes the open ones.
    const bytes = extra.bytes as Partial<Record<Door, { bytesIn: number, bytesOut: number }>> | undefined
    for (const door of DOORS) {
      const live = bytes?.[door]
      if (live) { doors[door].bytesIn = live.bytesIn; doors[door].bytesOut = live.bytesOut }
    }
    return {
      uptime: Math.round((Date.now() - this.startedAt) / 1000),
      uptimeMs: Date.now() - this.startedAt,
      doors,
      connections: Object.fromEntries(DOORS.map((d) => [d, this.doors[d].connections])),
      dropped: { ...this.dropped },
      admitted: { ...this.admitted },
      stored: { ...this.stored },
      denied: { ...this.denied },
      memory: { rss: process.memoryUsage.rss() },
      ...extra
    }
  }
}
