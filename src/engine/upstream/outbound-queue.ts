import type { AbstractLevel } from 'abstract-level'
import { FusionError } from '../../core/errors.js'

/** One message bound for the upstream, as the queue keeps it. */
export interface OutboundMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1
  readonly retain: boolean
}

interface Entry {
  readonly seq: number
  readonly size: number
  /** In memory while the hot budget allows; otherwise read back from the store in batches. */
  msg: OutboundMessage | undefined
  inflight: boolean
  acked: boolean
}

export interface QueueLimits {
  readonly maxMessages: number
  readonly maxBytes: number
  /**
   * Bytes of queued messages also kept in memory; the rest are read back from disk when
   * their turn comes. Bounds the memory of a long outage to this plus ~60 bytes a message.
   * @default 8388608 (8 MiB)
   */
  readonly hotBytes?: number
}

type Db = AbstractLevel<any, any, any>

/** Messages read back from the store at once when the queue's head is not in memory. */
const LOAD_BATCH = 512
// Fixed-width hex keys sort in sequence order.
const keyOf = (seq: number): string => seq.toString(16).padStart(13, '0')

/** [flags: qos | retain << 1][topic length: u16][topic][payload] */
export function encodeMessage (m: OutboundMessage): Buffer {
  const topic = Buffer.from(m.topic, 'utf8')
  const head = Buffer.allocUnsafe(3)
  head[0] = m.qos | (m.retain ? 2 : 0)
  head.writeUInt16BE(topic.length, 1)
  return Buffer.concat([head, topic, m.payload])
}

export function decodeMessage (b: Buffer): OutboundMessage {
  if (b.length < 3) throw new Error('queued record too short')
  const flags = b[0] as number
  const len = b.readUInt16BE(1)
  if (3 + len > b.length) throw new Error('queued record truncated')
  return { qos: (flags & 1) as 0 | 1, retain: (flags & 2) !== 0, topic: b.toString('utf8', 3, 3 + len), payload: b.subarray(3 + len) }
}

/**
 * The store-and-forward queue of one upstream link: QoS 1 messages in arrival order, on
 * disk in a sublevel of the gateway's store from the moment they are accepted until the
 * upstream acknowledges them. Bounded by count and bytes: past either limit the oldest
 * message not in flight is dropped and counted. Writes and deletes are group-committed
 * (one LevelDB batch per turn of the event loop).
 */
export class OutboundQueue {
  readonly #db: any
  readonly #limits: Required<QueueLimits>
  #entries: Entry[] = []
  #head = 0 // index of the first entry not yet acknowledged
  #nextSeq = 1
  #count = 0
  #inflight = 0
  #bytes = 0
  #hot = 0
  #dropped = 0
  #pending: Array<{ type: 'put' | 'del', key: string, value?: Buffer }> = []
  #waiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  #writing: Promise<void> | undefined
  #scheduled = false
  #loading: Promise<void> | undefined
  #closed = false

  private constructor (db: Db, name: string, limits: QueueLimits) {
    this.#db = db.sublevel(`upstream-${name}`, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
    this.#limits = { hotBytes: 8 * 1024 * 1024, ...limits }
  }

  /** Opens the queue of link `name`, reloading what a previous run left unacknowledged. */
  static async open (db: Db, name: string, limits: QueueLimits): Promise<OutboundQueue> {
    const q = new OutboundQueue(db, name, limits)
    for await (const [key, value] of q.#db.iterator() as AsyncIterable<[string, Buffer]>) {
      const seq = parseInt(key, 16)
      if (!Number.isSafeInteger(seq)) continue
      let msg: OutboundMessage | undefined
      if (q.#hot + value.length <= q.#limits.hotBytes) {
        try { msg = decodeMessage(value) } catch { q.#pending.push({ type: 'del', key }); continue }
        q.#hot += value.length
      }
      q.#entries.push({ seq, size: value.length, msg, inflight: false, acked: false })
      q.#bytes += value.length
      q.#count++
      q.#nextSeq = seq + 1
    }
    q.#trim()
    q.#schedule()
    return q
  }

  /** Messages queued, in flight included. */
  get size (): number { return this.#count }
  get bytes (): number { return this.#bytes }
  /** Messages dropped because the queue was full. */
  get dropped (): number { return this.#dropped }
  /** Messages sent and not yet acknowledged (a counter: the sender asks before every send). */
  get inflight (): number { return this.#inflight }

  /**
   * Appends; resolves once the message is on disk (the gateway's PUBACK to the device
   * waits for it). Rejects with STORE_FAILED when the write fails.
   */
  push (msg: OutboundMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new FusionError('SHUTTING_DOWN', 'the upstream queue is closed'))
    const value = encodeMessage(msg)
    const seq = this.#nextSeq++
    const keep = this.#hot + value.length <= this.#limits.hotBytes
    if (keep) this.#hot += value.length
    this.#entries.push({ seq, size: value.length, msg: keep ? msg : undefined, inflight: false, acked: false })
    this.#bytes += value.length
    this.#count++
    this.#pending.push({ type: 'put', key: keyOf(seq), value })
    this.#trim()
    const stored = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
    this.#schedule()
    return stored
  }

  /**
   * The next message to send (oldest first, never one already in flight), marked in
   * flight; undefined when there is none or its record must first be read back (then
   * `load()` and ask again).
   */
  take (): { seq: number, msg: OutboundMessage } | undefined | 'load' {
    for (let i = this.#head; i < this.#entries.length; i++) {
      const e = this.#entries[i] as Entry
      if (e.inflight || e.acked) continue
      if (!e.msg) return 'load'
      e.inflight = true
      this.#inflight++
      return { seq: e.seq, msg: e.msg }
    }
    return undefined
  }

  /** Reads back the next batch of records that are only on disk. */
  load (): Promise<void> {
    this.#loading ??= this.#load().finally(() => { this.#loading = undefined })
    return this.#loading
  }

  async #load (): Promise<void> {
    await this.flushed()
    const want: Entry[] = []
    for (let i = this.#head; i < this.#entries.length && want.length < LOAD_BATCH; i++) {
      const e = this.#entries[i] as Entry
      if (!e.msg && !e.acked) want.push(e)
    }
    if (!want.length) return
    const values = await this.#db.getMany(want.map((e) => keyOf(e.seq))) as Array<Buffer | undefined>
    want.forEach((e, i) => {
      const v = values[i]
      try {
        if (v) { e.msg = decodeMessage(v); this.#hot += e.size; return }
      } catch {}
      // Gone or unreadable on disk: nothing can be sent for it; count it as dropped.
      e.acked = true
      this.#count--
      this.#bytes -= e.size
      this.#dropped++
    })
    this.#advance()
  }

  /** The upstream acknowledged `seq`: forget it, on disk too. */
  ack (seq: number): void {
    const e = this.#find(seq)
    if (!e || e.acked) return
    e.acked = true
    if (e.inflight) this.#inflight--
    e.inflight = false
    this.#release(e)
    this.#pending.push({ type: 'del', key: keyOf(seq) })
    this.#schedule()
    this.#advance()
  }

  /** The link dropped: everything in flight is sent again, first, in order. */
  requeueInflight (): void {
    for (let i = this.#head; i < this.#entries.length; i++) (this.#entries[i] as Entry).inflight = false
    this.#inflight = 0
  }

  /** Resolves once everything pushed or acknowledged so far is written (or failed). */
  flushed (): Promise<void> {
    if (!this.#pending.length) return this.#writing ?? Promise.resolve()
    const done = new Promise<void>((resolve) => this.#waiters.push({ resolve, reject: () => resolve() }))
    this.#flushNow()
    return done
  }

  /** Writes what is pending and refuses further pushes; safe to call twice. */
  async close (): Promise<void> {
    this.#closed = true
    await this.flushed()
  }

  #find (seq: number): Entry | undefined {
    // Entries are in seq order: a binary search over the live part.
    let lo = this.#head
    let hi = this.#entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const e = this.#entries[mid] as Entry
      if (e.seq === seq) return e
      if (e.seq < seq) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }

  #release (e: Entry): void {
    this.#count--
    this.#bytes -= e.size
    if (e.msg) { this.#hot -= e.size; e.msg = undefined }
  }

  /** Moves the head past acknowledged entries and compacts the array now and then. */
  #advance (): void {
    while (this.#head < this.#entries.length && (this.#entries[this.#head] as Entry).acked) this.#head++
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head)
      this.#head = 0
    }
  }

  /** Drops the oldest entries not in flight until both limits hold. */
  #trim (): void {
    let i = this.#head
    while ((this.size > this.#limits.maxMessages || this.#bytes > this.#limits.maxBytes) && i < this.#entries.length) {
      const e = this.#entries[i++] as Entry
      if (e.acked || e.inflight) continue
      e.acked = true
      this.#release(e)
      this.#dropped++
      this.#pending.push({ type: 'del', key: keyOf(e.seq) })
    }
    this.#advance()
  }

  #schedule (): void {
    if (this.#scheduled || this.#writing || !this.#pending.length) return
    this.#scheduled = true
    setImmediate(() => { this.#scheduled = false; this.#flushNow() })
  }

  // Group commit, as the history log does: one batch at a time, the next one gathering
  // everything that arrives meanwhile.
  #flushNow (): void {
    if (this.#writing || !this.#pending.length) return
    const ops = this.#pending
    const waiters = this.#waiters
    this.#pending = []
    this.#waiters = []
    this.#writing = (this.#db.batch(ops) as Promise<void>).then(() => {
      for (const w of waiters) w.resolve()
    }, (cause: unknown) => {
      const err = new FusionError('STORE_FAILED', 'the upstream queue could not store the message', { cause })
      for (const w of waiters) w.reject(err)
    }).finally(() => {
      this.#writing = undefined
      this.#flushNow()
    })
  }
}
