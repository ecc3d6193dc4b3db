import { performance } from 'node:perf_hooks'

/**
 * Rate limiting, one implementation for every door: a token bucket per client (hub
 * session, MQTT client) or per key (an IP for HTTP and for connects).
 */

export type Clock = () => number
const monotonic: Clock = () => performance.now()

/**
 * Holds up to `burst` tokens and gains `ratePerSec` per second; each message takes one.
 * Refilled lazily on take(), so an idle bucket costs nothing and no timer runs.
 */
export class TokenBucket {
  readonly ratePerSec: number
  readonly burst: number
  readonly #now: Clock
  #tokens: number
  #last: number

  constructor (ratePerSec: number, burst: number, now: Clock = monotonic) {
    this.ratePerSec = ratePerSec
    this.burst = burst
    this.#now = now
    this.#tokens = burst
    this.#last = now()
  }

  #refill (): void {
    const t = this.#now()
    if (t > this.#last) {
      this.#tokens = Math.min(this.burst, this.#tokens + (t - this.#last) * this.ratePerSec / 1000)
      this.#last = t
    }
  }

  /** Takes `n` tokens when there are enough; false (and nothing taken) otherwise. */
  take (n = 1): boolean {
    this.#refill()
    if (this.#tokens < n) return false
    this.#tokens -= n
    return true
  }

  /** True when `n` tokens could be taken now; takes nothing. */
  has (n = 1): boolean {
    this.#refill()
    return this.#tokens >= n
  }

  /** True when the bucket has refilled completely (it could be forgotten). */
  get full (): boolean {
    this.#refill()
    return this.#tokens >= this.burst
  }
}

/**
 * Buckets by key (an IP), at most `maxKeys` of them: when full, buckets that have
 * refilled are forgotten first, then the oldest, so a flood of distinct keys costs a
 * bounded map, never unbounded memory.
 */
export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>()
  readonly #rate: number
  readonly #burst: number
  readonly #maxKeys: number
  readonly #now: Clock

  constructor (ratePerSec: number, burst: number, maxKeys = 10_000, now: Clock = monotonic) {
    this.#rate = ratePerSec
    this.#burst = burst
    this.#maxKeys = maxKeys
    this.#now = now
  }

  take (key: string, n = 1): boolean {
    let b = this.#buckets.get(key)
    if (!b) {
      if (this.#buckets.size >= this.#maxKeys) this.#evict()
      b = new TokenBucket(this.#rate, this.#burst, this.#now)
      this.#buckets.set(key, b)
    }
    return b.take(n)
  }

  /** True when `key` could take `n` tokens now; takes nothing and adds no key. */
  has (key: string, n = 1): boolean {
    return this.#buckets.get(key)?.has(n) ?? n <= this.#burst
  }

  get size (): number { return this.#buckets.size }

  #evict (): void {
    // Bounded work: look at a few of the oldest entries, drop the refilled ones, and
    // drop the oldest when none has refilled.
    let looked = 0
    for (const [key, b] of this.#buckets) {
      if (b.full) this.#buckets.delete(key)
      if (++looked >= 64) break
    }
    if (this.#buckets.size >= this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value
      if (oldest !== undefined) this.#buckets.delete(oldest)
    }
  }
}

export type { RateVerdict } from '../types.js'
import type { RateVerdict } from '../types.js'

/**
 * A client's allowance plus its patience: a message over the rate is `limited` (the door
 * says RATE_LIMITED and drops it); once `maxStrikes` have been refused and another comes
 * before the strikes have drained (they drain at `maxStrikes` a second), the verdict is
 * `cut` (the door closes the connection). So a client that backs off after a burst is
 * never cut, and one that goes on sending over the rate is, however fast the gateway
 * reads it. (Clearing the strikes on any message within the rate, as before, let a
 * flood go on for ever whenever the gateway read it slower than `maxStrikes` frames per
 * token: one frame in 20 was within the rate at 1,000 a second on a loaded machine.)
 */
export class RateGate {
  readonly #bucket: TokenBucket
  readonly #patience: TokenBucket

  constructor (bucket: TokenBucket, maxStrikes: number, now: Clock = monotonic) {
    this.#bucket = bucket
    this.#patience = new TokenBucket(maxStrikes, maxStrikes, now)
  }

  take (): RateVerdict {
    if (this.#bucket.take()) return 'ok'
    return this.#patience.take() ? 'limited' : 'cut'
  }
}

/** Refused messages (draining at as many a second) before a /ws client is closed with 1008. */
export const RATE_STRIKES = 50

const UNLIMITED: Pick<RateGate, 'take'> = { take: () => 'ok' }

/**
 * Makes one gate per client: `ratePerSec` messages a second, bursts of twice that.
 * A rate of 0 turns limiting off (for benchmarks on a trusted network).
 */
export function rateGateFactory (ratePerSec: number, maxStrikes = RATE_STRIKES, now: Clock = monotonic): () => Pick<RateGate, 'take'> {
  if (ratePerSec <= 0) return () => UNLIMITED
  return () => new RateGate(new TokenBucket(ratePerSec, ratePerSec * 2, now), maxStrikes, now)
}
