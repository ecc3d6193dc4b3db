import { FusionError } from '../errors.js'
import { KeyedBuckets, type Clock } from './token-bucket.js'
import { addressKey } from './connection-guard.js'

/**
 * Failed password checks one address may have: 20 at once, then one a second (3,600
 * guesses an hour), over every door together. Counted per address key (an IPv6 /64 is
 * one address), so spreading guesses over many user names does not escape it. Twice the
 * per-name allowance, so a user who mistypes is stopped by the name's wait first.
 */
export const LOGIN_FAILURES_PER_ADDRESS = { perSec: 1, burst: 20 } as const

/**
 * Password guessing from one address, against any number of user names: each failed
 * check takes a token from the address's bucket, and while the bucket is empty every
 * check from that address is refused RATE_LIMITED before the password is looked at
 * (so a refusal says nothing about a guess). Right passwords take nothing, so a NAT full
 * of devices that log in correctly is never slowed; only failures are counted.
 */
export class AddressLoginGate {
  readonly #failures: KeyedBuckets

  constructor (now?: Clock, rate: { perSec: number, burst: number } = LOGIN_FAILURES_PER_ADDRESS) {
    this.#failures = new KeyedBuckets(rate.perSec, rate.burst, 10_000, now)
  }

  /** Throws RATE_LIMITED while `address` must wait. An unknown address is not limited here. */
  check (address: string | undefined): void {
    if (address === undefined) return
    if (!this.#failures.has(addressKey(address))) {
      throw new FusionError('RATE_LIMITED', 'too many failed logins from this address; wait a little')
    }
  }

  failed (address: string | undefined): void {
    if (address !== undefined) this.#failures.take(addressKey(address))
  }
}

export interface LoginThrottleOptions {
  /** Failed logins in a row a name may have before attempts must wait. @default 10 */
  readonly freeFailures?: number
  /** The first wait; each further failure doubles it. @default 1000 */
  readonly baseMs?: number
  /** The longest wait, so an attacker can lock a user out for at most this long at a time. @default 60000 */
  readonly maxMs?: number
  /** Names remembered; the oldest is forgotten past this. @default 10000 */
  readonly maxNames?: number
}

/**
 * Password guessing against one user name, from however many addresses: after ten
 * failures in a row each further attempt for that name must wait, the wait doubling up
 * to a minute; a right password resets it. While a name waits its attempts are refused
 * without checking the password, so a wait says nothing about whether a guess was
 * right. Unknown names are counted alike, so the answers do not tell which users
 * exist. The per-address login rate is a separate, earlier gate.
 */
export class LoginThrottle {
  readonly #entries = new Map<string, { failures: number, until: number }>()
  readonly #now: () => number
  readonly #free: number
  readonly #baseMs: number
  readonly #maxMs: number
  readonly #maxNames: number

  constructor (now: () => number = Date.now, opts: LoginThrottleOptions = {}) {
    this.#now = now
    this.#free = opts.freeFailures ?? 10
    this.#baseMs = opts.baseMs ?? 1000
    this.#maxMs = opts.maxMs ?? 60_000
    this.#maxNames = opts.maxNames ?? 10_000
  }

  /** Throws RATE_LIMITED while `name` must wait. */
  check (name: string): void {
    const e = this.#entries.get(name)
    if (!e) return
    const left = e.until - this.#now()
    if (left > 0) throw new FusionError('RATE_LIMITED', `too many failed logins for this user name; try again in ${Math.ceil(left / 1000)} s`)
  }

  failed (name: string): void {
    const e = this.#entries.get(name) ?? { failures: 0, until: 0 }
    e.failures++
    if (e.failures >= this.#free) e.until = this.#now() + Math.min(this.#maxMs, this.#baseMs * 2 ** (e.failures - this.#free))
    // Re-inserted, so the map's order is least recently failed first.
    this.#entries.delete(name)
    this.#entries.set(name, e)
    if (this.#entries.size > this.#maxNames) this.#entries.delete(this.#entries.keys().next().value as string)
  }

  succeeded (name: string): void { this.#entries.delete(name) }
}
