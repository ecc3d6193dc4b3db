import type { Redis } from 'ioredis'
import type { Via } from '../../core/topics/envelope.js'

/** How to say a client is offline (PresenceTracker.announce, bound by the gateway). */
export type AnnounceOffline = (clientId: string, name: string, via: Via) => Promise<void>

/**
 * How long one node's cleanup after a dead one keeps the others from doing it too.
 * @default 60000
 */
const REAP_LOCK_MS = 60_000

/** SCAN batch for ledgers left by nodes that are gone. @default 100 */
const SCAN_COUNT = 100

/**
 * Which clients each node has announced online, kept in Redis (one hash per node), so
 * that when a node dies without saying goodbye for its clients, another node can. One
 * node alone does this at start (`clearStale`); in a cluster the others are still
 * running, so they do it when the node falls silent or leaves.
 */
export class PresenceLedger {
  readonly #db: Redis
  readonly #nodeId: string
  readonly #prefix: string

  constructor (db: Redis, nodeId: string, prefix = 'fusion:presence:node:') {
    this.#db = db
    this.#nodeId = nodeId
    this.#prefix = prefix
  }

  #key (nodeId: string): string { return `${this.#prefix}${nodeId}` }

  /**
   * One of our clients went online or offline. Queued by ioredis while Redis is away
   * and written when it is back, in order.
   */
  record (clientId: string, status: 'online' | 'offline', name: string, via: Via): void {
    const key = this.#key(this.#nodeId)
    const done = status === 'online'
      ? this.#db.hset(key, clientId, JSON.stringify({ name, via }))
      : this.#db.hdel(key, clientId)
    done.catch(() => {})
  }

  /**
   * Says offline for every client `deadNode` had online, then forgets its ledger. A
   * client that a live node (`alive`, or this one) has online meanwhile (a device that
   * reconnected elsewhere) is left alone. Only one node does it (a lock); returns how
   * many it announced.
   */
  async reap (deadNode: string, alive: Iterable<string>, announce: AnnounceOffline): Promise<number> {
    if (deadNode === this.#nodeId) return 0
    const locked = await this.#db.set(`${this.#prefix}reaping:${deadNode}`, this.#nodeId, 'PX', REAP_LOCK_MS, 'NX')
    if (locked !== 'OK') return 0
    const entries = Object.entries(await this.#db.hgetall(this.#key(deadNode)))
    const liveKeys = [this.#nodeId, ...alive].filter((id) => id !== deadNode).map((id) => this.#key(id))
    const check = this.#db.pipeline()
    for (const [clientId] of entries) for (const k of liveKeys) check.hexists(k, clientId)
    const found = (await check.exec()) ?? []
    let n = 0
    for (const [i, [clientId, raw]] of entries.entries()) {
      const elsewhere = liveKeys.some((_k, j) => found[i * liveKeys.length + j]?.[1] === 1)
      if (elsewhere) continue
      let p: { name?: string, via?: Via } = {}
      try { p = JSON.parse(raw) as typeof p } catch {}
      await announce(clientId, p.name ?? clientId, p.via ?? 'mqtt').then(() => { n++ }, () => {})
    }
    await this.#db.del(this.#key(deadNode))
    return n
  }

  /** Reaps the ledgers of nodes that are neither this one nor in `alive`. */
  async reapOrphans (alive: ReadonlySet<string>, announce: AnnounceOffline): Promise<number> {
    let cursor = '0'
    let n = 0
    const seen = new Set<string>()
    do {
      const [next, keys] = await this.#db.scan(cursor, 'MATCH', `${this.#prefix}*`, 'COUNT', SCAN_COUNT)
      cursor = next
      for (const key of keys) {
        const node = key.slice(this.#prefix.length)
        if (node.startsWith('reaping:') || node === this.#nodeId || alive.has(node) || seen.has(node)) continue
        seen.add(node)
        n += await this.reap(node, alive, announce)
      }
    } while (cursor !== '0')
    return n
  }
}
