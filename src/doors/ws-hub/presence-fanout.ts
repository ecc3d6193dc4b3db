import type { PresenceInfo, PresenceTracker } from '../../engine/presence.js'
import type { HubSession } from './session.js'

/**
 * At most this many `presence` frames per interval reach a client that did not ask for
 * `presence-batch` (the most recent changes; an older client that counts them may be off
 * during a storm). Without a bound, N joins cost N x N frames: 4,000 joins took 113 s.
 */
export const LEGACY_FRAMES_PER_INTERVAL = 16

/** At most this many joins listed in one `presence-batch` delta (`more.joined` counts the rest). */
export const MAX_JOINED_PER_BATCH = 20

/**
 * What presence may cost all sessions together, per second: a bound on frames and on
 * bytes. A flush costs (sessions x its frame); the next interval is stretched until the
 * flush fits the budget, so a storm of joins costs O(1) frames per join on average
 * however large the room (10,000 sessions: one frame about every 1.2 s in a storm).
 * Without it, a fixed 250 ms interval still cost every session 4 frames a second for as
 * long as the storm lasted, and a larger room makes the storm last longer: N x N again.
 */
export const FANOUT_FRAMES_PER_SECOND = 20_000
export const FANOUT_BYTES_PER_SECOND = 16 * 1024 * 1024
/**
 * And on time: a flush (serialising, and the socket writes it causes) may take at most
 * this share of the event loop; on a machine whose CPU is shared the interval stretches
 * instead of joins queueing behind presence.
 */
export const FANOUT_MAX_DUTY = 0.2

/** At most this many ids in the `left` list of one `presence-batch` frame (ids are short). */
export const MAX_LEFT_PER_BATCH = 256

/** The older frame: one per change (PROTOCOL.md). */
export function presenceFrame (p: PresenceInfo): Record<string, unknown> {
  return { type: 'presence', clientId: p.clientId, name: p.name, status: p.status, via: p.via, ts: p.ts }
}

// Each roster entry is serialised once, however many rosters and frames list it.
const entryJson = new WeakMap<PresenceInfo, string>()

function entry (p: PresenceInfo): string {
  let json = entryJson.get(p)
  if (json === undefined) {
    json = JSON.stringify({ clientId: p.clientId, name: p.name, via: p.via, ts: p.ts })
    entryJson.set(p, json)
  }
  return json
}

export interface PresenceFanoutOptions {
  /** Milliseconds over which changes are gathered (`--presence-interval-ms`). */
  readonly intervalMs: number
  /** Clients listed in a frame, most recent first (`--presence-roster`). */
  readonly roster: number
}

/**
 * Presence for the /ws sessions, at a cost per join that does not grow with the room.
 *
 * Changes are gathered for one interval and then sent once: one `presence-batch` frame
 * (the count, the most recent joins, the leaves), serialised once into one Buffer that
 * every batch session's socket writes as is; and, for sessions that did not opt in, at
 * most LEGACY_FRAMES_PER_INTERVAL `presence` frames, each serialised once too. The first
 * change after a quiet interval goes out at once (leading edge), so a lone join is seen
 * without delay; a storm of joins costs each session one frame per interval.
 *
 * A session is added once its welcome, history and roster are out (`add`), so it never
 * gets a change before the roster it applies to.
 */
export class PresenceFanout {
  readonly #tracker: PresenceTracker
  readonly #opts: PresenceFanoutOptions
  readonly #batch = new Set<HubSession>()
  readonly #legacy = new Set<HubSession>()
  // The last change of each client in this interval, in the order of the changes
  // (re-inserted on each change), so a join and a leave within one interval are one entry.
  readonly #pending = new Map<string, PresenceInfo>()
  #timer: NodeJS.Timeout | undefined
  #lastFlush = 0
  // The wait after #lastFlush: the option, stretched by the budget of the last flush.
  #interval: number
  readonly #unlisten: () => void

  constructor (tracker: PresenceTracker, opts: PresenceFanoutOptions) {
    this.#tracker = tracker
    this.#opts = opts
    this.#interval = opts.intervalMs
    this.#unlisten = tracker.onChange((p) => this.#onChange(p))
  }

  /** Sends the roster to a session that has just had its history, then keeps it informed. */
  add (session: HubSession): void {
    if (!session.wantsPresence || session.closed) return
    if (session.presenceBatch) {
      session.write(this.snapshot())
      this.#batch.add(session)
    } else {
      for (const p of this.#tracker.online(100)) session.writeJson(presenceFrame(p))
      this.#legacy.add(session)
    }
  }

  remove (session: HubSession): void {
    this.#batch.delete(session)
    this.#legacy.delete(session)
  }

  /** The roster frame a batch session gets on joining: the count and the most recent clients. */
  snapshot (): string {
    const joined = this.#tracker.online(this.#opts.roster).map(entry).join(',')
    return `{"type":"presence-batch","snapshot":true,"online":${this.#tracker.count},"joined":[${joined}],"left":[]}`
  }

  #onChange (p: PresenceInfo): void {
    if (this.#batch.size === 0 && this.#legacy.size === 0) return
    this.#pending.delete(p.clientId)
    this.#pending.set(p.clientId, p)
    if (this.#timer) return
    const wait = Math.max(0, this.#lastFlush + this.#interval - Date.now())
    // Even at the leading edge, wait for the end of this turn: the changes one publish
    // burst brings arrive in the same turn and share the frame.
    this.#timer = setTimeout(() => this.#flush(), wait)
    this.#timer.unref()
  }

  #flush (): void {
    this.#timer = undefined
    this.#lastFlush = Date.now()
    if (this.#pending.size === 0) return
    const started = performance.now()
    const changes = [...this.#pending.values()]
    this.#pending.clear()
    let frames = 0
    let bytes = 0
    if (this.#batch.size) {
      const joined: string[] = []
      const left: string[] = []
      let joinedMore = 0
      let leftMore = 0
      // Most recent first, as the roster.
      for (let i = changes.length - 1; i >= 0; i--) {
        const p = changes[i] as PresenceInfo
        if (p.status === 'online') {
          if (joined.length < Math.min(this.#opts.roster, MAX_JOINED_PER_BATCH)) joined.push(entry(p))
          else joinedMore++
        } else if (left.length < MAX_LEFT_PER_BATCH) left.push(p.clientId)
        else leftMore++
      }
      const more = joinedMore || leftMore ? `,"more":{"joined":${joinedMore},"left":${leftMore}}` : ''
      const data = Buffer.from(`{"type":"presence-batch","online":${this.#tracker.count},"joined":[${joined.join(',')}],"left":${JSON.stringify(left)}${more}}`, 'utf8')
      for (const s of this.#batch) s.write(data)
      frames += this.#batch.size
      bytes += this.#batch.size * data.length
    }
    if (this.#legacy.size) {
      const legacy = changes.slice(-LEGACY_FRAMES_PER_INTERVAL).map((p) => Buffer.from(JSON.stringify(presenceFrame(p)), 'utf8'))
      for (const s of this.#legacy) for (const f of legacy) s.write(f)
      frames += this.#legacy.size * legacy.length
      bytes += this.#legacy.size * legacy.reduce((a, f) => a + f.length, 0)
    }
    const budget = Math.max(this.#opts.intervalMs,
      Math.ceil(frames * 1000 / FANOUT_FRAMES_PER_SECOND),
      Math.ceil(bytes * 1000 / FANOUT_BYTES_PER_SECOND))
    this.#interval = budget
    // The sessions' sockets are corked until the end of this tick (ws-cork.ts): a tick
    // queued now runs after their writes, so it sees what the whole flush cost.
    process.nextTick(() => {
      const took = performance.now() - started
      this.#interval = Math.min(60_000, Math.max(budget, Math.ceil(took / FANOUT_MAX_DUTY)))
    })
  }

  /** Milliseconds the next flush waits after the last one (for tests and /api/stats). */
  get intervalMs (): number { return this.#interval }

  close (): void {
    this.#unlisten()
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#pending.clear()
    this.#batch.clear()
    this.#legacy.clear()
  }
}
