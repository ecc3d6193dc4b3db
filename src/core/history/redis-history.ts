import type { Redis } from 'ioredis'
import { FusionError } from '../errors.js'
import type { HistoryRecord } from './history-log.js'
import type { HistoryStore, NewHistoryRecord } from './history-store.js'

export interface RedisHistoryOptions {
  /** Messages kept per topic; older ones are trimmed as new ones come. @default 1000 */
  readonly maxPerTopic?: number
  /** Oldest message kept, in ms: older ones are trimmed and never read. @default 30 days */
  readonly maxAgeMs?: number
  /** Key prefix, so several deployments can share one Redis. @default 'fusion:history:' */
  readonly prefix?: string
}

/** A sequence number as it is written into a stamp and a log entry: 20 digits, fixed width. */
export const SEQ_WIDTH = 20

/**
 * Numbers one logged message, keeps it, and publishes it, in one step on Redis.
 *
 * KEYS: counter, log, done-marker. ARGV: channel, message, marker, record JSON, floor,
 * max per topic, max age (ms), cutoff (ts), how long a done-marker lives (ms). The message is the emitter's encoded envelope with
 * a placeholder (`marker`, SEQ_WIDTH bytes) where the sequence goes: the script puts
 * the number in its place, so the copy every node receives carries it. Doing the
 * three in one script makes the order of numbers the order in which every node
 * receives the messages, so a client that saw seq N and asks for `since N` misses
 * nothing. `floor` is the highest number the calling node has seen: a Redis that lost
 * its data starts counting above it instead of handing out old numbers again.
 *
 * A node sends the same message again when its connection broke before the answer
 * came (it cannot know whether Redis ran it). The done-marker, keyed by the message's
 * envelope id, makes the second run publish again under the first number and store
 * nothing: no message is kept twice.
 */
const APPEND_AND_PUBLISH = `
local seq = tonumber(redis.call('GET', KEYS[3]))
if seq then
  local padded = string.format('%0${SEQ_WIDTH}d', seq)
  local msg = ARGV[2]
  local i = string.find(msg, ARGV[3], 1, true)
  if i then msg = string.sub(msg, 1, i - 1) .. padded .. string.sub(msg, i + string.len(ARGV[3])) end
  redis.call('PUBLISH', ARGV[1], msg)
  return seq
end
seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[5])
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[1], seq)
end
redis.call('SET', KEYS[3], seq, 'PX', ARGV[9])
local padded = string.format('%0${SEQ_WIDTH}d', seq)
local msg = ARGV[2]
local i = string.find(msg, ARGV[3], 1, true)
if i then msg = string.sub(msg, 1, i - 1) .. padded .. string.sub(msg, i + string.len(ARGV[3])) end
redis.call('ZADD', KEYS[2], seq, padded .. ARGV[4])
local keep = tonumber(ARGV[6])
local n = redis.call('ZCARD', KEYS[2])
if n > keep then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, n - keep - 1) end
local cutoff = tonumber(ARGV[8])
local oldest = redis.call('ZRANGE', KEYS[2], 0, 9)
local drop = 0
for _, m in ipairs(oldest) do
  local ok, rec = pcall(cjson.decode, string.sub(m, ${SEQ_WIDTH + 1}))
  if ok and type(rec) == 'table' and tonumber(rec.ts) and tonumber(rec.ts) < cutoff then drop = drop + 1 else break end
end
if drop > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, drop - 1) end
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PUBLISH', ARGV[1], msg)
return seq
`

type AppendCommand = (counter: string, log: string, done: string, channel: string, message: Buffer, marker: string,
  record: string, floor: number, keep: number, maxAgeMs: number, cutoff: number, doneMs: number) => Promise<number>

/**
 * How long Redis remembers that a message was stored, so that sending it again after a
 * broken connection stores nothing twice. Covers an outage up to this long; costs one
 * small key per logged message for as long.
 * @default 300000 (5 minutes)
 */
const DONE_MARKER_MS = 5 * 60_000

/**
 * The history log of a cluster, in Redis: per topic a counter and a sorted set scored by
 * sequence, each entry the fixed-width sequence followed by the record's JSON (so two
 * identical messages stay two entries). Shared by every node; numbered at ingress by
 * `appendAndPublish`, which the cluster emitter calls instead of a plain PUBLISH.
 */
export class RedisHistory implements HistoryStore {
  readonly numbersAtIngress = true
  readonly #db: Redis
  readonly #pub: Redis
  readonly #up: () => boolean
  readonly #last = new Map<string, number>()
  readonly #maxPerTopic: number
  readonly #maxAgeMs: number
  readonly #prefix: string
  readonly #inflight = new Set<Promise<unknown>>()
  #closed = false

  /**
   * `db` reads, `pub` appends (the connection that publishes everything else, so a
   * logged message keeps its place among the others); `up` tells whether Redis answers.
   */
  constructor (db: Redis, pub: Redis, up: () => boolean, opts: RedisHistoryOptions = {}) {
    this.#db = db
    this.#pub = pub
    this.#up = up
    this.#maxPerTopic = opts.maxPerTopic ?? 1000
    this.#maxAgeMs = opts.maxAgeMs ?? 30 * 24 * 3600 * 1000
    this.#prefix = opts.prefix ?? 'fusion:history:'
    if (typeof (pub as unknown as { fusionAppend?: unknown }).fusionAppend !== 'function') {
      pub.defineCommand('fusionAppend', { numberOfKeys: 3, lua: APPEND_AND_PUBLISH })
    }
  }

  #counterKey (topic: string): string { return `${this.#prefix}seq:${topic}` }
  #logKey (topic: string): string { return `${this.#prefix}log:${topic}` }

  /**
   * Numbers `record`, keeps it and publishes `message` on `channel` with the number in
   * place of `marker`; resolves with the number. `id` names the message: a second call
   * with the same id publishes again and stores nothing.
   */
  appendAndPublish (id: string, channel: string, message: Buffer, marker: string, record: NewHistoryRecord): Promise<number> {
    if (this.#closed) return Promise.reject(new FusionError('SHUTTING_DOWN', 'history log is closed'))
    const topic = record.topic
    const append = (this.#pub as unknown as { fusionAppend: AppendCommand }).fusionAppend
    const p = append.call(this.#pub, this.#counterKey(topic), this.#logKey(topic), `${this.#prefix}done:${id}`, channel, message, marker,
      JSON.stringify(record), this.lastSeq(topic), this.#maxPerTopic, this.#maxAgeMs, Date.now() - this.#maxAgeMs, DONE_MARKER_MS)
      .then((seq) => {
        this.noteDelivered(topic, Number(seq))
        return Number(seq)
      })
    this.#inflight.add(p)
    const done = (): void => { this.#inflight.delete(p) }
    p.then(done, done)
    return p
  }

  /** Appending where a message is delivered is the one-node design: not here. */
  append (_record: NewHistoryRecord): { seq: number, stored: Promise<void> } {
    throw new FusionError('INTERNAL', 'the shared history log numbers messages where they are accepted')
  }

  noteDelivered (topic: string, seq: number): void {
    if (seq > (this.#last.get(topic) ?? 0)) this.#last.set(topic, seq)
  }

  lastSeq (topic: string): number { return this.#last.get(topic) ?? 0 }

  async last (topic: string, limit: number): Promise<HistoryRecord[]> {
    if (limit <= 0) return []
    return this.#read(topic, (p) => p.zrange(this.#logKey(topic), -limit, -1, 'WITHSCORES'))
  }

  async since (topic: string, since: number, limit: number): Promise<HistoryRecord[]> {
    if (limit <= 0) return []
    return this.#read(topic, (p) => p.zrangebyscore(this.#logKey(topic), `(${since}`, '+inf', 'WITHSCORES', 'LIMIT', 0, limit))
  }

  async #read (topic: string, query: (p: ReturnType<Redis['pipeline']>) => unknown): Promise<HistoryRecord[]> {
    // Queued reads would hold a joining client or an HTTP request for as long as Redis
    // is away: answer at once instead (the hub sends an empty history; HTTP says 503).
    if (!this.#up()) throw new FusionError('STORE_FAILED', 'the history log is unreachable (Redis is down)')
    const pipeline = this.#db.pipeline()
    query(pipeline)
    pipeline.get(this.#counterKey(topic))
    const results = await pipeline.exec()
    const [rangeErr, flat] = results?.[0] ?? [new Error('no reply'), []]
    const [, counter] = results?.[1] ?? [null, null]
    if (rangeErr) throw new FusionError('STORE_FAILED', 'the history log could not be read', { cause: rangeErr })
    if (counter !== null && counter !== undefined) this.noteDelivered(topic, Number(counter))
    const cutoff = Date.now() - this.#maxAgeMs
    const out: HistoryRecord[] = []
    const items = flat as string[]
    for (let i = 0; i + 1 < items.length; i += 2) {
      const member = items[i] as string
      let rec: Omit<HistoryRecord, 'seq'>
      try { rec = JSON.parse(member.slice(SEQ_WIDTH)) } catch { continue }
      if (rec.ts < cutoff) continue
      out.push({ seq: Number(items[i + 1]), ...rec })
    }
    return out
  }

  /** Resolves once every append started so far has settled. */
  async flushed (): Promise<void> {
    await Promise.allSettled([...this.#inflight])
  }

  async close (): Promise<void> {
    this.#closed = true
    await this.flushed()
  }
}
