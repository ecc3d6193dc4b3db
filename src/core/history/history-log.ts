import type { AbstractLevel } from 'abstract-level'
import { FusionError } from '../errors.js'
import type { HistoryStore } from './history-store.js'
import type { HistoryRecord } from '../types.js'

export type { HistoryRecord } from '../types.js'

export interface HistoryOptions {
  /** Messages kept per topic; older ones are deleted as new ones come. @default 1000 */
  readonly maxPerTopic?: number
  /** Oldest message kept, in ms; a sweep deletes older ones. @default 30 days */
  readonly maxAgeMs?: number
  /** Distinct topics kept; a message on a new topic over it is not logged. @default 10000 */
  readonly maxTopics?: number
  /** Told each time a message is not logged because of maxTopics (counted in the stats). */
  readonly onTopicRefused?: () => void
}

// The same physical LevelDB may be shared with the broker's persistence; these
// sublevels keep our keys out of its way.
type Db = AbstractLevel<any, any, any>

const SEP = '\u0000' // cannot occur in a topic [MQTT-4.7.3-2]
const END = '\u0001'
const seqKey = (topic: string, seq: number): string => `${topic}${SEP}${seq.toString(16).padStart(13, '0')}`

/**
 * A per-topic message log with sequence numbers. `append` assigns the sequence at once
 * (so live frames and history agree on it) and stores in batches; readers wait for
 * what was appended before them, so a read never misses an acknowledged message.
 */
export class HistoryLog implements HistoryStore {
  /** One process numbers each message where it is delivered. */
  readonly numbersAtIngress = false
  readonly #records: any
  readonly #seqs: any
  readonly #last = new Map<string, number>()
  readonly #maxPerTopic: number
  readonly #maxAgeMs: number
  readonly #maxTopics: number
  readonly #onTopicRefused: () => void
  #sweeper: NodeJS.Timeout | undefined
  readonly #db: Db
  // Operations appended since the last write began, in the order they were appended.
  #pending: Array<{ type: 'put' | 'del', sublevel: any, key: string, value?: unknown }> = []
  // Last sequence per topic among the pending records: one seq write per topic per batch.
  #pendingSeqs = new Map<string, number>()
  #waiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  #writing: Promise<void> | undefined
  #scheduled = false
  #closed = false

  private constructor (db: Db, opts: HistoryOptions) {
    this.#db = db
    this.#records = db.sublevel('history', { valueEncoding: 'json' })
    this.#seqs = db.sublevel('history-seq', { valueEncoding: 'json' })
    this.#maxPerTopic = opts.maxPerTopic ?? 1000
    this.#maxAgeMs = opts.maxAgeMs ?? 30 * 24 * 3600 * 1000
    this.#maxTopics = opts.maxTopics ?? 10_000
    this.#onTopicRefused = opts.onTopicRefused ?? (() => {})
  }

  /** Opens the log on `db` and loads the last sequence of every topic. */
  static async open (db: Db, opts: HistoryOptions = {}): Promise<HistoryLog> {
    const log = new HistoryLog(db, opts)
    for await (const [topic, seq] of log.#seqs.iterator()) log.#last.set(topic as string, seq as number)
    await log.sweep()
    log.#sweeper = setInterval(() => { log.sweep().catch(() => {}) }, Math.min(60_000, Math.max(1000, log.#maxAgeMs / 10)))
    log.#sweeper.unref()
    return log
  }

  /** The last sequence number given on `topic` (0 when none). */
  lastSeq (topic: string): number { return this.#last.get(topic) ?? 0 }

  /** Nothing to note: this log numbers every message itself. */
  noteDelivered (_topic: string, _seq: number): void {}

  /** Appends; returns the new sequence number and a promise settled once it is stored. */
  append (record: Omit<HistoryRecord, 'seq'>): { seq: number, stored: Promise<void> } {
    if (this.#closed) return { seq: 0, stored: Promise.reject(new FusionError('SHUTTING_DOWN', 'history log is closed')) }
    // The topic cap (issue 13, item 7): the log and its per-topic sequence map hold at
    // most maxTopics topics. A message on a new topic over it is still delivered, but not
    // logged (seq 0, as on a topic outside --history-topics).
    if (!this.#last.has(record.topic) && this.#last.size >= this.#maxTopics) {
      this.#onTopicRefused()
      return { seq: 0, stored: Promise.resolve() }
    }
    const seq = this.lastSeq(record.topic) + 1
    this.#last.set(record.topic, seq)
    const full: HistoryRecord = { seq, ...record }
    this.#pending.push({ type: 'put', sublevel: this.#records, key: seqKey(record.topic, seq), value: full })
    if (seq > this.#maxPerTopic) this.#pending.push({ type: 'del', sublevel: this.#records, key: seqKey(record.topic, seq - this.#maxPerTopic) })
    this.#pendingSeqs.set(record.topic, seq)
    const stored = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
    this.#schedule()
    return { seq, stored }
  }

  /** The last `limit` records of `topic`, oldest first. */
  async last (topic: string, limit: number): Promise<HistoryRecord[]> {
    await this.flushed()
    if (limit <= 0) return []
    const out: HistoryRecord[] = []
    for await (const value of this.#records.values({ gte: topic + SEP, lt: topic + END, reverse: true, limit })) out.push(value)
    return out.reverse()
  }

  /** Records of `topic` after sequence `since`, oldest first, at most `limit`. */
  async since (topic: string, since: number, limit: number): Promise<HistoryRecord[]> {
    await this.flushed()
    const out: HistoryRecord[] = []
    for await (const value of this.#records.values({ gt: seqKey(topic, since), lt: topic + END, limit })) out.push(value)
    return out
  }

  /** Deletes messages older than the age limit; returns how many. */
  async sweep (now = Date.now()): Promise<number> {
    const cutoff = now - this.#maxAgeMs
    let deleted = 0
    for (const topic of [...this.#last.keys()]) {
      const keys: string[] = []
      // Records are in sequence order, so the old ones are a prefix: stop at the first young one.
      for await (const [key, value] of this.#records.iterator({ gte: topic + SEP, lt: topic + END, limit: 10_000 })) {
        if ((value as HistoryRecord).ts >= cutoff) break
        keys.push(key as string)
      }
      if (keys.length) {
        await this.#records.batch(keys.map((key) => ({ type: 'del', key })))
        deleted += keys.length
      }
    }
    return deleted
  }

  /** Resolves once everything appended so far is stored (or failed). */
  flushed (): Promise<void> {
    if (!this.#pending.length) return this.#writing ?? Promise.resolve()
    const done = new Promise<void>((resolve) => this.#waiters.push({ resolve, reject: () => resolve() }))
    this.#flushNow()
    return done
  }

  /** Stores what is pending and refuses further appends; safe to call twice. */
  async close (): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      clearInterval(this.#sweeper)
    }
    await this.flushed()
  }

  #schedule (): void {
    if (this.#scheduled || this.#writing) return
    this.#scheduled = true
    // A burst of appends in one turn of the event loop is one write.
    setImmediate(() => { this.#scheduled = false; this.#flushNow() })
  }

  /**
   * Group commit: one batch is written at a time, and everything appended while it is
   * being written goes into the next one. Under load batches grow instead of queueing
   * up: each native batch call costs the event loop more than the records in it do.
   * Records, deletions and sequence numbers go in one atomic batch, so a crash never
   * leaves a record without its sequence (or the reverse).
   */
  #flushNow (): void {
    if (this.#writing || !this.#pending.length) return
    const ops: Array<{ type: 'put' | 'del', sublevel: any, key: string, value?: unknown }> = this.#pending
    const waiters = this.#waiters
    for (const [key, value] of this.#pendingSeqs) ops.push({ type: 'put', sublevel: this.#seqs, key, value })
    this.#pending = []
    this.#pendingSeqs = new Map()
    this.#waiters = []
    this.#writing = this.#db.batch(ops as any).then(() => {
      for (const w of waiters) w.resolve()
    }, (cause: unknown) => {
      // Each waiter hears of the failure; nothing is left as an unhandled rejection and
      // the next batch still runs.
      const err = new FusionError('STORE_FAILED', 'the history log could not store the message', { cause })
      for (const w of waiters) w.reject(err)
    }).finally(() => {
      this.#writing = undefined
      this.#flushNow()
    })
  }
}
