import type { LogFn } from '../../core/types.js'
import { EventEmitter } from 'node:events'
import { Redis, type RedisOptions } from 'ioredis'
import { FusionError } from '../../core/errors.js'


/** The three connections of one node, by what they carry. */
export type Role = 'pub' | 'sub' | 'db'

/**
 * How long start-up waits for Redis before it gives up with a one-line error. A node
 * that cannot reach Redis at start has nothing to serve: better a clear exit than a
 * gateway that accepts clients it cannot route.
 * @default 3000
 */
const START_TIMEOUT_MS = 3000

/**
 * Reconnection delay after the n-th failed attempt, capped low on purpose: when Redis
 * comes back, every node should be back within about a second, because held QoS 1
 * messages wait for the slowest node (see PeerSync). ioredis's default caps at 2 s.
 */
function retryDelay (times: number): number { return Math.min(100 * times, 500) }

/** The URL without its password, for messages and logs. */
export function redactUrl (url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString().replace(/\/$/, '')
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@')
  }
}

function errorCode (err: unknown): string {
  const e = err as { code?: string, message?: string, errors?: Array<{ code?: string }> }
  return e?.code ?? e?.errors?.[0]?.code ?? e?.message ?? String(err)
}

/**
 * The node's three Redis connections (publish, subscribe, commands) and whether all of
 * them are usable. ioredis reconnects by itself and queues commands while away
 * (`maxRetriesPerRequest: null`: nothing fails because Redis was gone for a while);
 * this class only watches, and says `up` when every connection is ready again.
 * Emits `change` (up: boolean) when that flips.
 */
export class RedisLink extends EventEmitter {
  readonly url: string
  readonly pub: Redis
  readonly sub: Redis
  readonly db: Redis
  #up = false
  #downSince = 0
  #closing = false
  readonly #log: LogFn

  private constructor (url: string, name: string, log: LogFn) {
    super()
    this.url = url
    this.#log = log
    const base: RedisOptions = {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      retryStrategy: retryDelay,
      connectTimeout: START_TIMEOUT_MS
    }
    // What was in flight on `pub` when it broke is resent by ClusterEmitter after the
    // nodes resynchronise, not by ioredis the moment it reconnects (see there). No
    // auto-pipelining here: ioredis drops unanswered commands without settling them when
    // it does not resend them, and an auto-pipeline that never settles blocks every
    // command after it.
    this.pub = new Redis(url, { ...base, connectionName: `${name}-pub`, autoResendUnfulfilledCommands: false })
    this.sub = new Redis(url, { ...base, connectionName: `${name}-sub` })
    this.db = new Redis(url, { ...base, connectionName: `${name}-db`, enableAutoPipelining: true })
    for (const conn of this.conns()) {
      // ioredis logs every failed reconnect attempt when nobody listens: we report the outage once.
      conn.on('error', () => {})
      for (const ev of ['ready', 'close', 'end', 'reconnecting']) conn.on(ev, () => this.#recompute())
    }
  }

  /**
   * Connects, or fails with one sentence that names the URL: `--redis redis://...:
   * cannot connect (ECONNREFUSED)`.
   */
  static async open (url: string, name: string, log: LogFn): Promise<RedisLink> {
    const shown = redactUrl(url)
    // A throwaway probe with no retries, so "Redis is down" is an answer, not a wait.
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: START_TIMEOUT_MS, enableOfflineQueue: false })
    // connect() rejects with "Connection is closed."; the reason comes as an 'error' event.
    let reason: unknown
    probe.on('error', (err) => { reason ??= err })
    try {
      await probe.connect()
      await probe.ping()
    } catch (cause) {
      throw new FusionError('STORE_UNUSABLE', `--redis ${shown}: cannot connect (${errorCode(reason ?? cause)})`, { cause: reason ?? cause })
    } finally {
      probe.disconnect()
    }
    const link = new RedisLink(url, name, log)
    try {
      await withTimeout(Promise.all(link.conns().map((c) => c.connect())), START_TIMEOUT_MS)
    } catch (cause) {
      await link.close()
      throw new FusionError('STORE_UNUSABLE', `--redis ${shown}: cannot connect (${errorCode(cause)})`, { cause })
    }
    link.#recompute()
    return link
  }

  conns (): Redis[] { return [this.pub, this.sub, this.db] }

  /** True while every connection is ready. */
  get up (): boolean { return this.#up }

  /** Milliseconds since the link went down (0 while up). */
  get downForMs (): number { return this.#up ? 0 : Date.now() - this.#downSince }

  #recompute (): void {
    if (this.#closing) return
    const up = this.conns().every((c) => c.status === 'ready')
    if (up === this.#up) return
    this.#up = up
    if (up) {
      const gone = this.#downSince ? Date.now() - this.#downSince : 0
      if (this.#downSince) this.#log('info', `redis: ${redactUrl(this.url)} is back after ${gone} ms`)
    } else {
      this.#downSince = Date.now()
      const which = this.conns().filter((c) => c.status !== 'ready').map((c) => c.options.connectionName ?? '?').join(', ')
      this.#log('warn', `redis: ${redactUrl(this.url)} lost (${which}); QoS 1 publishes wait, QoS 0 ones from MQTT clients are dropped until it is back`)
    }
    this.emit('change', up)
  }

  /** From now on connections end on purpose: no more outage reports. */
  beginClose (): void { this.#closing = true }

  /** Ends every connection: politely (QUIT) when possible, at once after `ms`. */
  async close (ms = 1000): Promise<void> {
    this.#closing = true
    await Promise.allSettled(this.conns().map((c) => endConnection(c, ms)))
  }
}

/** QUIT (pending replies first) with a deadline, then a hard disconnect. */
export async function endConnection (conn: Redis, ms: number): Promise<void> {
  if (conn.status === 'end') return
  if (conn.status !== 'ready') { conn.disconnect(); return }
  try {
    await withTimeout(conn.quit(), ms)
  } catch {}
  if ((conn.status as string) !== 'end') conn.disconnect()
}

function withTimeout<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEDOUT' })), ms) })
  ]).finally(() => clearTimeout(timer))
}
