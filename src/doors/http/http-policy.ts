import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createHash, timingSafeEqual } from 'node:crypto'
import { FusionError } from '../../core/errors.js'
import { OriginCheck } from '../../core/policy/origin-check.js'
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
  /** True when the gateway binds loopback only: foreign Host names are refused (DNS rebinding). */
  readonly loopbackOnly?: boolean | undefined
  /** The gateway's Origin and Host checks, shared with the upgrade router; built from the fields above when left out. */
  readonly originCheck?: OriginCheck | undefined
  /** With auth on: a fixed Bearer token that may read /metrics and /api/stats. */
  readonly metricsToken?: string | undefined
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
  /** The Origin and Host checks, shared with the upgrade router. */
  readonly originCheck: OriginCheck
  readonly #secure: boolean
  readonly #metricsDigest: Buffer | undefined

  constructor (init: HttpPolicyInit) {
    this.auth = init.auth
    this.#publishRate = init.msgRate > 0 ? new KeyedBuckets(init.msgRate, init.msgRate * 2) : undefined
    this.originCheck = init.originCheck ?? new OriginCheck({ allowed: init.allowedOrigins, secure: init.secure, loopbackOnly: init.loopbackOnly ?? false })
    this.#secure = init.secure
    this.#metricsDigest = init.metricsToken === undefined ? undefined : digest(init.metricsToken)
  }

  #checkOrigin (req: FastifyRequest): void {
    if (!this.originCheck.originAllowed(req.raw)) throw new FusionError('ACL_DENIED', 'Origin not allowed')
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

  /**
   * Checks a read of the gateway's figures (GET /metrics, GET /api/stats): with auth on,
   * the --metrics-token as a Bearer token or any user's login token; NOT_AUTHORIZED
   * otherwise. With auth off they stay open, as they always were.
   */
  checkMonitor (req: FastifyRequest): void {
    if (!this.auth) return
    const header = req.headers.authorization
    if (this.#metricsDigest && typeof header === 'string' && header.length <= 1024 && header.slice(0, 7).toLowerCase() === 'bearer ') {
      // Compared as digests: equal lengths for timingSafeEqual, and no timing on the token.
      if (timingSafeEqual(digest(header.slice(7).trim()), this.#metricsDigest)) return
    }
    this.auth.userOfRequest(req)
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
    // DNS rebinding: a page whose name now points at 127.0.0.1 is "same origin" to the
    // browser and could read every route. Bound to loopback, only loopback names answer.
    app.addHook('onRequest', (req, _reply, done) => {
      if (this.originCheck.hostAllowed(req.raw)) return done()
      done(new FusionError('ACL_DENIED', 'Host not allowed: the gateway listens on loopback only (see --allow-origin)'))
    })
    app.addHook('onRequest', (req, reply, done) => {
      const timer = setTimeout(() => { if (!reply.sent) req.raw.socket?.destroy() }, REQUEST_DEADLINE_MS)
      timer.unref()
      reply.raw.once('close', () => clearTimeout(timer))
      done()
    })
  }

  /**
   * Checks a request to the admin API: the rate, a valid token, and a user marked
   * `:admin` in the users file (401 without a token, 403 for other users). With auth off
   * there are no admins: NOT_FOUND, as for POST /api/login.
   */
  checkAdmin (req: FastifyRequest): string {
    if (this.#publishRate && !this.#publishRate.take(addressKey(req.ip))) {
      throw new FusionError('RATE_LIMITED', 'too many requests from this address; slow down')
    }
    if (!this.auth) throw new FusionError('NOT_FOUND', 'auth is off (no --users): the admin API needs a user marked admin')
    const user = this.auth.userOfRequest(req)
    if (!this.auth.isAdmin(user)) throw new FusionError('ACL_DENIED', `user ${user} is not an admin (mark it with: mqtt-fusion user add ${user} --admin)`)
    return user
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

function digest (text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}
