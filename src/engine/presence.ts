import type { Bridge, Sink } from './bridge.js'
import type { FusionMessage } from './message.js'
import type { Via } from '../core/topics/envelope.js'

export interface PresenceInfo {
  readonly clientId: string
  readonly name: string
  readonly status: 'online' | 'offline'
  readonly via: string
  readonly ts: number
}

const PRESENCE_FILTER = 'presence/+'

/** Where a cluster node notes which of its own clients are online (cluster/presence-ledger.ts). */
export interface PresenceLedgerLike {
  record (clientId: string, status: 'online' | 'offline', name: string, via: Via): void
}

/** Reads a presence payload: our JSON, or a device's own plain `online`/`offline` will. */
export function parsePresence (clientId: string, msg: FusionMessage): PresenceInfo | undefined {
  const raw = msg.encoding ? '' : msg.text
  let status: string | undefined
  let name: string | undefined
  let via: string | undefined
  let ts: number | undefined
  if (raw.startsWith('{')) {
    try {
      const o = JSON.parse(raw) as Record<string, unknown>
      if (typeof o.status === 'string') status = o.status
      if (typeof o.name === 'string') name = o.name
      if (typeof o.via === 'string') via = o.via
      if (typeof o.ts === 'number') ts = o.ts
    } catch {}
  } else {
    status = raw.trim().toLowerCase()
  }
  if (status !== 'online' && status !== 'offline') return undefined
  return { clientId, status, name: name ?? clientId, via: via ?? msg.via, ts: ts ?? msg.ts }
}

/**
 * Keeps who is online, from the retained `presence/<clientId>` topics (so it works
 * across nodes), publishes our own clients' presence, and tells listeners of changes.
 */
export class PresenceTracker implements Sink {
  readonly #bridge: Bridge
  readonly #online = new Map<string, PresenceInfo>()
  // Who came online, oldest first, so "the most recent N" costs O(N) and not a sort of
  // everyone on every join (which made N joins cost N^2 log N). A client that goes offline
  // or comes back leaves its old slot behind (skipped: #slot no longer points at it);
  // the array is compacted when the dead slots outnumber the live ones.
  #order: string[] = []
  readonly #slot = new Map<string, number>()
  readonly #listeners = new Set<(p: PresenceInfo) => void>()
  // Our own clients that are online, and those whose offline notice failed to go out,
  // so both can be announced again (reannounce()).
  readonly #local = new Map<string, { name: string, via: Via }>()
  readonly #owedOffline = new Map<string, { name: string, via: Via }>()

  readonly #ledger: PresenceLedgerLike | undefined

  /** `ledger`: on a cluster node, so another node can say offline for our clients if we die. */
  constructor (bridge: Bridge, opts: { ledger?: PresenceLedgerLike | undefined } = {}) {
    this.#bridge = bridge
    this.#ledger = opts.ledger
  }

  async start (): Promise<void> {
    await this.#bridge.subscribe(PRESENCE_FILTER, this)
    for (const msg of await this.#bridge.retained(PRESENCE_FILTER)) this.#apply(msg, false)
    // The retained store answers in no useful order: put the roster in order of arrival, once.
    this.#order = [...this.#online.values()].sort((a, b) => a.ts - b.ts).map((p) => p.clientId)
    this.#slot.clear()
    this.#order.forEach((id, i) => this.#slot.set(id, i))
  }

  /** Marks every client still recorded online as offline: at the start of a single node, none can be. */
  async clearStale (): Promise<void> {
    const stale = [...this.#online.values()]
    await Promise.allSettled(stale.map((p) => this.announce(p.clientId, 'offline', p.name, p.via as Via)))
  }

  deliver (msg: FusionMessage): void { this.#apply(msg, true) }

  #apply (msg: FusionMessage, notify: boolean): void {
    const clientId = msg.topic.slice('presence/'.length)
    if (msg.payload.length === 0) { this.#remove(clientId); return }
    const info = parsePresence(clientId, msg)
    if (!info) return
    if (info.status === 'online') {
      this.#online.set(clientId, info)
      this.#slot.set(clientId, this.#order.length)
      this.#order.push(clientId)
      if (this.#order.length > 1024 && this.#order.length > 2 * this.#slot.size) this.#compact()
    } else {
      this.#remove(clientId)
    }
    if (notify) for (const fn of this.#listeners) fn(info)
  }

  #remove (clientId: string): void {
    this.#online.delete(clientId)
    this.#slot.delete(clientId)
    if (this.#order.length > 1024 && this.#order.length > 2 * this.#slot.size) this.#compact()
  }

  #compact (): void {
    const order: string[] = []
    for (let i = 0; i < this.#order.length; i++) {
      const id = this.#order[i] as string
      if (this.#slot.get(id) !== i) continue
      this.#slot.set(id, order.length)
      order.push(id)
    }
    this.#order = order
  }

  /** Publishes the retained presence of one of our clients. */
  announce (clientId: string, status: 'online' | 'offline', name: string, via: Via): Promise<void> {
    this.#ledger?.record(clientId, status, name, via)
    if (status === 'online') this.#local.set(clientId, { name, via })
    else this.#local.delete(clientId)
    this.#owedOffline.delete(clientId)
    const ts = Date.now()
    const payload = Buffer.from(JSON.stringify({ status, name, via, ts }), 'utf8')
    const sent = this.#bridge.publish({
      topic: `presence/${clientId}`, payload, qos: 0, retain: true, origin: { ts, via, from: name, clientId }
    })
    if (status === 'offline') sent.catch(() => { if (!this.#local.has(clientId)) this.#owedOffline.set(clientId, { name, via }) })
    return sent
  }

  /**
   * Announces every client of ours that is online again: after a cluster node's Redis
   * came back, the announcements made meanwhile (or all of them, if Redis lost its
   * data) are missing from the retained topics.
   */
  async reannounce (): Promise<void> {
    await Promise.allSettled([
      ...[...this.#local].map(([clientId, p]) => this.announce(clientId, 'online', p.name, p.via)),
      ...[...this.#owedOffline].map(([clientId, p]) => this.announce(clientId, 'offline', p.name, p.via))
    ])
  }

  /** How many clients are online now (all nodes). */
  get count (): number { return this.#online.size }

  /**
   * Who is online now, most recent first: `limit` of them after skipping the `offset`
   * most recent. Costs O(offset + limit) plus, now and then, one compaction that the
   * departures since the last one paid for.
   */
  page (offset: number, limit: number): PresenceInfo[] {
    const out: PresenceInfo[] = []
    if (limit <= 0 || offset >= this.#online.size) return out
    // A deep page walks every dead slot too: compact first when there are many.
    if (offset > 0 && this.#order.length > this.#slot.size + 1024) this.#compact()
    let skip = offset
    for (let i = this.#order.length - 1; i >= 0 && out.length < limit; i--) {
      const id = this.#order[i] as string
      if (this.#slot.get(id) !== i) continue
      if (skip > 0) { skip--; continue }
      const p = this.#online.get(id)
      if (p) out.push(p)
    }
    return out
  }

  /** Who is online now, most recent first, at most `limit`. */
  online (limit = 200): PresenceInfo[] {
    return this.page(0, limit)
  }

  onChange (fn: (p: PresenceInfo) => void): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }
}
