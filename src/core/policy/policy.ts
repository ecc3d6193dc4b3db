import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { FusionError } from '../errors.js'
import type { GatewayOptions } from '../options.js'
import { createDefaultAcl, type Acl, type AclDecision, type ExplainWho, type Identity } from './acl.js'
import { loadAclFile } from './acl-file.js'
import { Auth } from './auth.js'
import { ConnectionGuard } from './connection-guard.js'
import { admitSocket, createUpgradeAdmission, type Refusal, type UpgradeDoor } from './connection-admission.js'
import { parseTrustedProxies, type TrustedProxies } from './trust-proxy.js'
import { loadTokenSecret } from './token.js'
import { isLoopbackHost, OriginCheck } from './origin-check.js'
import { rateGateFactory } from './token-bucket.js'
import type { RateGateFactory } from '../types.js'
import { UserStore } from './users.js'
import type { LogLike } from '../log-throttle.js'
import type { Stats } from '../stats.js'
import { createAdmit, type Admit } from '../admit.js'

/** Everything the doors need from the policy, built once from the options. */
export interface GatewayPolicy {
  readonly acl: Acl
  /** The one admission path of every message source (core/admit.ts). */
  readonly admit: Admit
  /** Undefined when auth is off (no users file). */
  readonly auth: Auth | undefined
  readonly guard: ConnectionGuard
  /** One message-rate gate per client; undefined when --msg-rate is 0. */
  readonly rateGate: RateGateFactory | undefined
  readonly allowedOrigins: readonly string[]
  /** The Origin and Host checks of the upgrades and the HTTP API (one instance for both). */
  readonly originCheck: OriginCheck
  /** Certificate and key when TLS is on. */
  readonly tls: { readonly cert: Buffer, readonly key: Buffer } | undefined
  /** The upgrade router's admit hook (limits; /mqtt tokens). */
  readonly admitUpgrade: (req: IncomingMessage, door: UpgradeDoor) => Refusal | undefined
  /** Admission of a raw MQTT/TCP or MQTT/TLS socket. */
  readonly admitSocket: (socket: Socket) => boolean
  /** `--trust-proxy`: whose X-Forwarded-For and PROXY header we believe; undefined: nobody's. */
  readonly trustProxy: TrustedProxies | undefined
  /** With auth on, who a /ws connection is (or why not); undefined with auth off. */
  readonly identifyHub: ((req: IncomingMessage) => string | FusionError) | undefined
  /**
   * Rereads the users file and the ACL file (SIGHUP). All or nothing: when either file
   * is missing or bad, the error names it and both stay as they were. Returns what was
   * reloaded, empty when the gateway runs without either file.
   */
  reload (): string[]
}

/** An ACL whose rules can be replaced while the doors hold on to it. */
class SwappableAcl implements Acl {
  constructor (public current: Acl) {}
  checkPublish (who: Identity, topic: string): void { this.current.checkPublish(who, topic) }
  checkSubscribe (who: Identity, filter: string): void { this.current.checkSubscribe(who, filter) }
  explain (who: ExplainWho, access: 'read' | 'write', target: string): AclDecision {
    if (!this.current.explain) throw new FusionError('NOT_FOUND', 'this ACL cannot explain its decisions')
    return this.current.explain(who, access, target)
  }
}

function readPem (file: string, flag: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new FusionError('BAD_OPTION', `--${flag} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
}

function isLoopback (host: string): boolean {
  return isLoopbackHost(host)
}

/**
 * Builds the policy of every door from the options: the ACL (a file or the default),
 * auth (on with a users file), the connection and rate limits, origins and TLS.
 * `acl` overrides the ACL (embedding and tests).
 */
export function createPolicy (options: Readonly<GatewayOptions>, stats: Stats, log: LogLike, acl?: Acl): GatewayPolicy {
  const theAcl = new SwappableAcl(acl ?? (options.acl ? loadAclFile(options.acl) : createDefaultAcl()))
  let users: UserStore | undefined
  const tls = options.tlsCert && options.tlsKey
    ? { cert: readPem(options.tlsCert, 'tls-cert'), key: readPem(options.tlsKey, 'tls-key') }
    : undefined
  let auth: Auth | undefined
  if (options.users) {
    users = UserStore.load(options.users)
    const secret = loadTokenSecret(options.tokenSecret, options.users, (m) => log('warn', m))
    auth = new Auth({ users, secret, tokenTtlMs: options.tokenTtlS * 1000 })
    log('info', `auth is on: ${users.size} user(s) from ${options.users}`)
    if (users.size === 0) log('warn', `${options.users} has no users: nobody can log in (mqtt-fusion user add NAME --users ${options.users})`)
    if (!tls && !isLoopback(options.host)) log('warn', 'auth is on without TLS: passwords and tokens cross the network in the clear (--tls-cert/--tls-key)')
  }
  const allowedOrigins = (options.allowOrigin ?? '').split(',').map((o) => o.trim()).filter(Boolean)
  if (options.metricsToken !== undefined && !auth) log('warn', '--metrics-token has no effect without --users: /metrics and /api/stats are open while auth is off')
  const guard = new ConnectionGuard(options)
  const trustProxy = parseTrustedProxies(options.trustProxy)
  const refused = (err: FusionError): void => { if (err.code === 'RATE_LIMITED') stats.dropped.rateLimited++ }
  const ready = auth
  return {
    acl: theAcl,
    admit: createAdmit({ acl: theAcl, stats, limits: options }),
    auth,
    guard,
    rateGate: options.msgRate > 0 ? rateGateFactory(options.msgRate) : undefined,
    allowedOrigins,
    // Bound to loopback only, foreign Host names are refused (DNS rebinding).
    originCheck: new OriginCheck({ allowed: allowedOrigins, secure: tls !== undefined, loopbackOnly: isLoopback(options.host) }),
    tls,
    admitUpgrade: createUpgradeAdmission(guard, auth, refused, trustProxy),
    trustProxy,
    admitSocket: (socket) => admitSocket(guard, socket, refused),
    identifyHub: ready
      ? (req) => { try { return ready.userOfRequest(req) } catch (err) { return err as FusionError } }
      : undefined,
    reload () {
      // Read both before changing either, so a bad file leaves the old policy whole.
      const nextUsers = options.users && users ? UserStore.load(options.users) : undefined
      const nextAcl = options.acl && !acl ? loadAclFile(options.acl) : undefined
      const done: string[] = []
      if (nextUsers && users) {
        users.replaceWith(nextUsers)
        done.push(`--users ${options.users}: ${nextUsers.size} user(s)`)
      }
      if (nextAcl) {
        theAcl.current = nextAcl
        done.push(`--acl ${options.acl}`)
      }
      return done
    }
  }
}
