import { FusionError } from '../errors.js'
import type { HistoryRecord } from '../types.js'
import type { HistoryStore } from './history-store.js'

/**
 * Bytes of stored messages one page may hold (the `history` frame, one replay, one
 * `GET /api/history` answer). A page is read in small chunks and cut at this size, so one
 * request pins at most this much plus one chunk, whatever the client asked for.
 * @default 1 MiB
 */
export const PAGE_BYTES = 1024 * 1024

/** Messages one replay page holds at most (a client asks again for the next page). */
export const PAGE_MESSAGES = 500

/** Records read from the store per call: bounds the memory of one read step. */
const CHUNK = 16

/**
 * History reads running at once in the whole process; more wait their turn. With the
 * page and chunk bounds this caps what parallel replays can pin: 8 x (1 MiB + a chunk).
 * @default 8
 */
export const MAX_PARALLEL_READS = 8

/** Waiting history reads at most; past that a request is refused LIMIT_EXCEEDED (retry later). */
export const MAX_WAITING_READS = 1000

/** One page of a topic's history. */
export interface HistoryPage {
  readonly messages: HistoryRecord[]
  /** True when there are more: older ones for `latest`, newer ones for `after`. */
  readonly more: boolean
}

/** What one record costs on the wire, near enough to bound memory (JSON may escape more). */
function costOf (r: HistoryRecord): number {
  return r.payload.length + r.from.length + r.topic.length + (r.claimedFrom?.length ?? 0) + 96
}

/** A counting semaphore with a bounded queue: the gateway-wide limit on parallel history reads. */
export class ReadGate {
  readonly #max: number
  readonly #maxWaiting: number
  #running = 0
  readonly #waiting: Array<() => void> = []

  constructor (max = MAX_PARALLEL_READS, maxWaiting = MAX_WAITING_READS) {
    this.#max = max
    this.#maxWaiting = maxWaiting
  }

  async run<T> (fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#max) {
      if (this.#waiting.length >= this.#maxWaiting) throw new FusionError('LIMIT_EXCEEDED', 'too many history reads at once; try again shortly')
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    } else {
      this.#running++
    }
    try {
      return await fn()
    } finally {
      const next = this.#waiting.shift()
      if (next) next()
      else this.#running--
    }
  }
}

/**
 * The messages of `topic` after sequence `since`, oldest first: at most `limit` and
 * `maxBytes`. `more` says a next page starts after the last one returned.
 */
export async function pageAfter (store: HistoryStore, topic: string, since: number, limit: number, maxBytes = PAGE_BYTES): Promise<HistoryPage> {
  const messages: HistoryRecord[] = []
  let bytes = 0
  let cursor = since
  while (messages.length < limit) {
    const want = Math.min(CHUNK, limit - messages.length)
    const chunk = await store.since(topic, cursor, want)
    for (const r of chunk) {
      const cost = costOf(r)
      // The first message always fits, so a page is never empty while messages remain.
      if (messages.length > 0 && bytes + cost > maxBytes) return { messages, more: true }
      messages.push(r)
      bytes += cost
      cursor = r.seq
    }
    if (chunk.length < want) return { messages, more: false }
  }
  return { messages, more: (await store.since(topic, cursor, 1)).length > 0 }
}

/**
 * The newest messages of `topic`, oldest first: at most `limit` and `maxBytes`. Read
 * forward in chunks from where the newest `limit` start, dropping the oldest as the page
 * fills, so memory stays within the page however large the messages are.
 */
export async function pageLatest (store: HistoryStore, topic: string, limit: number, maxBytes = PAGE_BYTES): Promise<HistoryPage> {
  if (limit <= 0) return { messages: [], more: store.lastSeq(topic) > 0 }
  // `last(1)` also brings a node's idea of the newest number up to date (Redis).
  const newest = await store.last(topic, 1)
  const top = newest[0]?.seq ?? 0
  if (top === 0) return { messages: [], more: false }
  const messages: HistoryRecord[] = []
  let bytes = 0
  let dropped = top > limit
  let cursor = Math.max(0, top - limit)
  for (;;) {
    const chunk = await store.since(topic, cursor, CHUNK)
    for (const r of chunk) {
      if (r.seq > top) return { messages, more: dropped }
      messages.push(r)
      bytes += costOf(r)
      cursor = r.seq
      while (messages.length > limit || (messages.length > 1 && bytes > maxBytes)) {
        bytes -= costOf(messages.shift() as HistoryRecord)
        dropped = true
      }
    }
    if (chunk.length < CHUNK || cursor >= top) return { messages, more: dropped }
  }
}
