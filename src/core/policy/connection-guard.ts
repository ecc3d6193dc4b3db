import type { Socket } from 'node:net'
import { isIPv6 } from 'node:net'
import { FusionError } from '../errors.js'
import { KeyedBuckets, type Clock } from './token-bucket.js'

export interface ConnectionLimits {
  /** Open connections over every door together. */
  readonly maxConnections: number
  /** Open connections from one address (an IPv6 /64 counts as one address). */
  readonly maxConnectionsPerIp: number
  /** New connections a second from one address; bursts of twice that. */
  readonly connectRate: number
}

function expandIPv6 (ip: string): string[] {
  const [head, tail] = ip.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const fill = tail === undefined ? [] : new Array(Math.max(0, 8 - h.length - t.length)).fill('0')
  return [...h, ...fill, ...t]
}

/**
 * The key an address is counted under. IPv4-mapped addresses are their IPv4 form; an
 * IPv6 address counts by its /64, since one host is routinely given a whole /64 and
 * could otherwise open each connection from a fresh address.
 */
export function addressKey (ip: string | undefined): string {
  if (!ip) return 'unknown'
  if (ip.startsWith('::ffff:') && ip.includes('.')) return ip.slice(7)
  if (!isIPv6(ip)) return ip
  const groups = expandIPv6(ip.split('%')[0] as string)
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':') + '::/64'
}

/**
 * Counts open connections for every door and refuses new ones over the limits, before
 * any protocol work is done for them. Stops one host from taking every file
 * descriptor (total and per-address caps) and from making the gateway do a handshake
 * per packet it sends (connect rate).
 */
export class ConnectionGuard {
  readonly #limits: ConnectionLimits
  readonly #perIp = new Map<string, number>()
  readonly #rate: KeyedBuckets
  #open = 0

  constructor (limits: ConnectionLimits, now?: Clock) {
    this.#limits = limits
    this.#rate = new KeyedBuckets(limits.connectRate, limits.connectRate * 2, 10_000, now)
  }

  /** Open connections counted now. */
  get size (): number { return this.#open }

  /**
   * Counts a new connection from `ip`, or returns why it is refused (RATE_LIMITED for the
   * connect rate, LIMIT_EXCEEDED for the caps). Call the returned release exactly once
   * when an admitted connection closes.
   */
  open (ip: string | undefined): OpenConnection | FusionError {
    const key = addressKey(ip)
    if (!this.#rate.take(key)) return new FusionError('RATE_LIMITED', 'too many new connections from this address; slow down')
    if (this.#open >= this.#limits.maxConnections) return new FusionError('LIMIT_EXCEEDED', 'the gateway has as many connections as it takes; try again later')
    const mine = this.#perIp.get(key) ?? 0
    if (mine >= this.#limits.maxConnectionsPerIp) return new FusionError('LIMIT_EXCEEDED', 'too many connections from this address')
    this.#perIp.set(key, mine + 1)
    this.#open++
    return new OpenConnection(this, key)
  }

  /** Uncounts one connection of `key`: for OpenConnection.release only. @internal */
  static release (guard: ConnectionGuard, key: string): void {
    guard.#open--
    const n = (guard.#perIp.get(key) ?? 1) - 1
    if (n <= 0) guard.#perIp.delete(key)
    else guard.#perIp.set(key, n)
  }
}

/**
 * One admitted connection, counted until `release()` (safe to call twice). A small
 * object with its method on the prototype: every idle connection holds one.
 */
export class OpenConnection {
  #guard: ConnectionGuard | undefined
  readonly #key: string

  constructor (guard: ConnectionGuard, key: string) {
    this.#guard = guard
    this.#key = key
  }

  release (): void {
    const guard = this.#guard
    if (guard === undefined) return
    this.#guard = undefined
    ConnectionGuard.release(guard, this.#key)
  }

  /** Releases the count when `socket` closes (one listener shared by every socket). */
  releaseOnClose (socket: Socket): void {
    ;(socket as Counted)[OPEN] = this
    socket.on('close', releaseOpen)
  }
}

const OPEN = Symbol('fusion.openConnection')
type Counted = Socket & { [OPEN]?: OpenConnection }
function releaseOpen (this: Counted): void { this[OPEN]?.release() }
