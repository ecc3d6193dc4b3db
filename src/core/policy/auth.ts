import type { IncomingHttpHeaders } from 'node:http'
import { FusionError } from '../errors.js'
import { signToken, verifyToken, type SignedToken } from './token.js'
import type { UserStore } from './users.js'
import { AddressLoginGate, LoginThrottle, type LoginThrottleOptions } from './login-throttle.js'

/** The cookie a page's login sets; /ws, /mqtt and POST /api/publish read it. */
export const TOKEN_COOKIE = 'fusion_token'

/** What the auth needs to see of a request (an upgrade or a Fastify request). */
export interface RequestLike {
  readonly url?: string | undefined
  readonly headers: IncomingHttpHeaders
}

export interface AuthInit {
  readonly users: UserStore
  readonly secret: Buffer
  /** How long a login token lives, in milliseconds. */
  readonly tokenTtlMs: number
  readonly now?: () => number
  readonly throttle?: LoginThrottleOptions
}

/** The value of cookie `key` in a Cookie header. */
export function cookieValue (header: string | undefined, key: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== key) continue
    try { return decodeURIComponent(part.slice(eq + 1).trim()) } catch { return part.slice(eq + 1).trim() }
  }
  return undefined
}

/**
 * Auth for every door, on when the gateway has a users file: MQTT clients prove a
 * password in CONNECT; pages log in over HTTP and carry the token this signs.
 */
export class Auth {
  readonly #users: UserStore
  readonly #secret: Buffer
  readonly #ttlMs: number
  readonly #now: () => number
  // Users proved by an upgrade's token, for the MQTT CONNECT that follows on that socket.
  readonly #bound = new WeakMap<object, string>()
  readonly #throttle: LoginThrottle
  readonly #addresses: AddressLoginGate

  constructor (init: AuthInit) {
    this.#users = init.users
    this.#secret = init.secret
    this.#ttlMs = init.tokenTtlMs
    this.#now = init.now ?? Date.now
    this.#throttle = new LoginThrottle(this.#now, init.throttle)
    this.#addresses = new AddressLoginGate(init.now)
  }

  get tokenTtlMs (): number { return this.#ttlMs }

  /**
   * True when the password is right, for every door. Throws RATE_LIMITED when too many
   * checks run at once, while the name waits after failed logins for it (LoginThrottle),
   * or while `address` waits after failed logins from it (AddressLoginGate). `address`
   * is the peer's IP; every door passes it.
   */
  async checkPassword (username: string, password: string, address?: string): Promise<boolean> {
    this.#throttle.check(username)
    this.#addresses.check(address)
    const ok = await this.#users.verify(username, password)
    if (ok) {
      this.#throttle.succeeded(username)
    } else {
      this.#throttle.failed(username)
      this.#addresses.failed(address)
    }
    return ok
  }

  /** A token for a user who proved their password; NOT_AUTHORIZED otherwise. */
  async login (username: unknown, password: unknown, address?: string): Promise<SignedToken & { username: string }> {
    if (typeof username !== 'string' || typeof password !== 'string') {
      throw new FusionError('BAD_FRAME', 'the body must be {"username":"...","password":"..."}')
    }
    if (!(await this.checkPassword(username, password, address))) throw new FusionError('NOT_AUTHORIZED', 'wrong user name or password')
    return { username, ...signToken(this.#secret, username, this.#ttlMs, this.#now()) }
  }

  /** True while `name` is in the users file. */
  hasUser (name: string): boolean { return this.#users.has(name) }

  /** True while `name` is in the users file marked `:admin`. */
  isAdmin (name: string): boolean { return this.#users.isAdmin(name) }

  /** The user a token names, who must still be in the users file. Throws NOT_AUTHORIZED. */
  userOfToken (token: string): string {
    const user = verifyToken(this.#secret, token, this.#now())
    if (!this.#users.has(user)) throw new FusionError('NOT_AUTHORIZED', 'the token\'s user no longer exists')
    return user
  }

  /** The token a request carries: `Authorization: Bearer`, else `?token=`, else the cookie. */
  tokenOf (req: RequestLike): string | undefined {
    const header = req.headers.authorization
    if (typeof header === 'string' && /^bearer\s+/i.test(header)) return header.replace(/^bearer\s+/i, '').trim()
    const url = req.url ?? ''
    const q = url.indexOf('?')
    if (q >= 0) {
      const t = new URLSearchParams(url.slice(q + 1)).get('token')
      if (t) return t
    }
    return cookieValue(req.headers.cookie, TOKEN_COOKIE)
  }

  /** The user a request proves with its token. Throws NOT_AUTHORIZED when it has none or a bad one. */
  userOfRequest (req: RequestLike): string {
    const token = this.tokenOf(req)
    if (token === undefined) throw new FusionError('NOT_AUTHORIZED', 'auth is on: log in (POST /api/login) and pass the token')
    return this.userOfToken(token)
  }

  /** Remembers the user an upgrade request proved, for the connection made from it. */
  bind (req: object, user: string): void { this.#bound.set(req, user) }

  /** The user bound to an upgrade request, if any. */
  boundUser (req: object | null | undefined): string | undefined {
    return req ? this.#bound.get(req) : undefined
  }

  /** The Set-Cookie value carrying a token: not readable by scripts, never sent cross-site. */
  cookie (t: SignedToken, secure: boolean): string {
    const maxAge = Math.max(0, Math.floor((t.expiresAt - this.#now()) / 1000))
    return `${TOKEN_COOKIE}=${encodeURIComponent(t.token)}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
  }
}
