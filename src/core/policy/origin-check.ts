import { isIP } from 'node:net'

/**
 * Which browser pages may use the gateway: the Origin check (cross-site WebSocket
 * hijacking, CSRF on the API) and the Host check (DNS rebinding). One implementation for
 * the upgrade router and the HTTP API.
 */
export interface OriginPolicy {
  /** Origins allowed besides the page's own (`scheme://host[:port]`), or `*`. */
  readonly allowed: readonly string[]
  /** True when the HTTP port speaks TLS, so the page's own origin is https://. */
  readonly secure: boolean
  /**
   * True when every door binds a loopback address: then only loopback Host names are
   * answered (and the hosts of the allowed origins), so a page whose name was rebound
   * to 127.0.0.1 cannot reach us as "its own origin".
   */
  readonly loopbackOnly: boolean
}

/** What the checks read of a request (an IncomingMessage or a Fastify request's raw). */
export interface HeadersOf { readonly headers: { readonly host?: string | undefined, readonly origin?: string | undefined } }

/** True for an address or name that only this machine reaches. */
export function isLoopbackHost (host: string): boolean {
  const h = host.toLowerCase()
  // RFC 6761 6.3: localhost and names under .localhost resolve to loopback; browsers keep them there.
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  return h === '::1' || h === '[::1]'
}

/** The serialised origin of a URL (`scheme://host[:port]`, default port left out), or undefined. */
function originOf (text: string): string | undefined {
  try {
    const u = new URL(text)
    return u.origin === 'null' ? undefined : u.origin
  } catch {
    return undefined
  }
}

/** The host name of a Host header value (`name`, `name:port`, `[v6]:port`), lower case. */
function hostName (host: string): string {
  try {
    return new URL(`http://${host}`).hostname.toLowerCase()
  } catch {
    return ''
  }
}

/** A checker built once from the options: the allowed origins are parsed here, not per request. */
export class OriginCheck {
  readonly #any: boolean
  readonly #allowed: ReadonlySet<string>
  readonly #allowedHosts: ReadonlySet<string>
  readonly #scheme: 'http' | 'https'
  readonly #loopbackOnly: boolean

  constructor (p: OriginPolicy) {
    this.#any = p.allowed.includes('*')
    const origins = p.allowed.map((o) => originOf(o) ?? o)
    this.#allowed = new Set(origins)
    this.#allowedHosts = new Set(origins.map((o) => { try { return new URL(o).host.toLowerCase() } catch { return '' } }).filter(Boolean))
    this.#scheme = p.secure ? 'https' : 'http'
    this.#loopbackOnly = p.loopbackOnly
  }

  /**
   * True when the Host header names us. Bound to loopback only, that is a loopback name
   * or the host of an allowed origin (a reverse proxy that keeps the public name);
   * otherwise any Host, since the gateway is then meant to be reached by other names.
   * With `--allow-origin *` every page may use the gateway anyway, so the Host passes.
   */
  hostAllowed (req: HeadersOf): boolean {
    if (!this.#loopbackOnly || this.#any) return true
    const host = req.headers.host
    if (host === undefined || host.length === 0) return false
    if (isLoopbackHost(hostName(host))) return true
    return this.#allowedHosts.has(host.toLowerCase())
  }

  /**
   * True when the page that sent the request may use the gateway: no Origin (command
   * line, devices: not a browser), an allowed origin, or the page's own origin, which is
   * scheme, host and port [RFC 6454 5]: an https:// page is not the plain-http gateway
   * on the same host, nor is a page on another port.
   */
  originAllowed (req: HeadersOf): boolean {
    const origin = req.headers.origin
    if (origin === undefined) return true
    if (this.#any || this.#allowed.has(origin)) return true
    const given = originOf(origin)
    if (given === undefined) return false
    if (this.#allowed.has(given)) return true
    const host = req.headers.host
    if (host === undefined || host.length === 0) return false
    return given === originOf(`${this.#scheme}://${host}`)
  }

  /** Why a request is refused (403), or undefined when it may go on. */
  refusal (req: HeadersOf): string | undefined {
    if (!this.hostAllowed(req)) return 'Host not allowed: the gateway listens on loopback only (see --allow-origin)'
    if (!this.originAllowed(req)) return 'Origin not allowed'
    return undefined
  }
}
