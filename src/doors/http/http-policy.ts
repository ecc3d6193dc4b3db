import type { FastifyInstance, FastifyRequest } from 'fastify'
import { FusionError } from '../../core/errors.js'
import { originAllowed } from '../upgrade-router.js'
import type { Auth } from '../../core/policy/auth.js'
import { KeyedBuckets } from '../../core/policy/token-bucket.js'
import { addressKey } from '../../core/policy/connection-guard.js'

/**
 * Login attempts per address: one a second, bursts of 10. With scrypt at ~50 ms a check
 * this keeps password guessing at 3,600 tries an hour per address.
 */
export const LOGIN_RATE = { perSec: 1, burst: 10 } as const

/** Time a request has to arrive whole and be answered. */
export const REQUEST_DEADLINE_MS = 30_000

export interface HttpPolicyInit {
  /** Undefined when auth is off. */
  readonly auth?: Auth | undefined
  /** Publishes a second per address; 0 turns the limit off. */
  readonly msgRate: number
  /** Origins allowed besides the page's own. */
  readonly allowedOrigins: readonly string[]
  /** True when the page is served over https (the cookie is then Secure). */
  readonly secure: boolean
}

/** Who published over HTTP, as the ACL sees them. */
export interface HttpCaller {
  readonly username?: string | undefined
}

/**
 * The policy of the HTTP API: the same users, tokens and rates as the other doors.
 * A browser page of another origin may not post with the user's cookie (CSRF).
 */
export class HttpPolicy {
  readonly auth: Auth | undefined
  readonly #publishRate: KeyedBuckets | undefined
  readonly #loginRate = new KeyedBuckets(LOGIN_RATE.perSec, LOGIN_RATE.burst)
  readonly #origins: readonly string[]
  readonly #secure: boolean

  constructor (init: HttpPolicyInit) {
    this.auth = init.auth
    this.#publishRate = init.msgRate > 0 ? new KeyedBuckets(init.msgRate, init.msgRate * 2) : undefined
    this.#origins = init.allowedOrigins
    this.#secure = init.secure
  }

  #checkOrigin (req: FastifyRequest): void {
    if (!originAllowed(req.raw, this.#origins)) throw new FusionError('ACL_DENIED', 'Origin not allowed')
  }

  /** Checks a POST /api/publish before its body is used; throws a coded error. */
  checkPublish (req: FastifyRequest): HttpCaller {
    this.#checkOrigin(req)
    if (this.#publishRate && !this.#publishRate.take(addressKey(req.ip))) {
      throw new FusionError('RATE_LIMITED', 'too many publishes from this address; slow down')
    }
    if (!this.auth) return {}
    return { username: this.auth.userOfRequest(req) }
  }

  /** Checks a read of stored messages (GET /api/history): the rate, and the token when auth is on. */
  checkRead (req: FastifyRequest): HttpCaller {
    if (this.#publishRate && !this.#publishRate.take(addressKey(req.ip))) {
      throw new FusionError('RATE_LIMITED', 'too many requests from this address; slow down')
    }
    if (!this.auth) return {}
    return { username: this.auth.userOfRequest(req) }
  }

  /**
   * Fastify turns Node's request timeout off, and Node's own did not cut a body trickled
   * a byte a second (tried): every request is answered within the deadline or its socket
   * goes, so slow bodies cannot hold sockets for ever.
   */
  registerDeadline (app: FastifyInstance): void {
    app.addHook('onRequest', (req, reply, done) => {
      const timer = setTimeout(() => { if (!reply.sent) req.raw.socket?.destroy() }, REQUEST_DEADLINE_MS)
      timer.unref()
      reply.raw.once('close', () => clearTimeout(timer))
      done()
    })
  }

  /** Checks a POST /api/login before its body is used: Origin, auth on, the per-address login rate. */
  checkLogin (req: FastifyRequest): Auth {
    this.#checkOrigin(req)
    if (!this.auth) throw new FusionError('NOT_FOUND', 'auth is off: no login is needed')
    if (!this.#loginRate.take(addressKey(req.ip))) throw new FusionError('RATE_LIMITED', 'too many logins from this address; wait a little')
    return this.auth
  }

  /** The Set-Cookie value that carries a token to the pages (Secure over https). */
  cookieFor (auth: Auth, token: Parameters<Auth['cookie']>[0]): string {
    return auth.cookie(token, this.#secure)
  }
}
