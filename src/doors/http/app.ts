import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance, type FastifyError } from 'fastify'
import fastifyStatic from '@fastify/static'
import { FusionError } from '../../core/errors.js'
import type { Bridge } from '../../engine/bridge.js'
import type { HistoryStore } from '../../core/history/history-store.js'
import type { ReadGate } from '../../core/history/history-page.js'
import type { Admit } from '../../core/admit.js'
import type { Acl } from '../../core/policy/acl.js'
import type { Stats } from '../../core/stats.js'
import type { GatewayOptions } from '../../core/options.js'
import { historyRoutes } from './routes/history.js'
import { loginRoutes } from './routes/login.js'
import { publishRoutes } from './routes/publish.js'
import { statusRoutes } from './routes/status.js'
import { aclExplainRoutes } from './routes/acl-explain.js'
import { registerExamplePages } from './example-pages.js'
import { benchRoutes } from './routes/bench.js'
import type { HttpPolicy } from './http-policy.js'
import { registerPresenceRoute } from './presence-route.js'
import type { PresenceTracker } from '../../engine/presence.js'
import type { TrustedProxies } from '../../core/policy/trust-proxy.js'
import { jsonTooDeep, MAX_JSON_DEPTH } from '../../core/json-guard.js'

export interface AppDeps {
  readonly options: Readonly<GatewayOptions>
  readonly bridge: Bridge
  readonly history: HistoryStore
  readonly reads: ReadGate
  readonly acl: Acl
  readonly admit: Admit
  readonly stats: Stats
  /** Extra figures for /api/stats (bytes per door, broker counts). */
  readonly statsExtra: () => Record<string, unknown>
  readonly health: () => { ready: boolean, detail: Record<string, unknown> }
  /** Origin, rate and token checks, and POST /api/login; undefined: none (anonymous, unlimited). */
  readonly policy?: HttpPolicy | undefined
  /** `--trust-proxy`: `req.ip` comes from X-Forwarded-For when the peer is one of these. */
  readonly trustProxy?: TrustedProxies | undefined
  /** Who is online: serves `GET /api/presence` (paged roster). */
  readonly presence?: PresenceTracker | undefined
  /** Certificate and key: the app serves https (and wss for the upgrades). */
  readonly https?: { readonly cert: Buffer, readonly key: Buffer } | undefined
}

const here = dirname(fileURLToPath(import.meta.url))
/** The pages: ../../public from both src/http and dist/http. */
export const PUBLIC_DIR = join(here, '..', '..', '..', 'public')
const MQTT_DIST = join(dirname(createRequire(import.meta.url).resolve('mqtt/package.json')), 'dist')

// No inline script or style anywhere, so this policy holds: injected markup cannot run.
const CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
  "connect-src 'self' ws: wss:", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"
].join('; ')

/** Builds the Fastify app (pages, REST, metrics). It never listens itself. */
export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { options, bridge, history, acl, admit, stats, policy } = deps
  const app = Fastify({
    ...(deps.https ? { https: { cert: deps.https.cert, key: deps.https.key } } : {}),
    logger: false,
    // Fastify walks X-Forwarded-For from the right while the hop is trusted (proxy-addr),
    // the same rule as the upgrades' (core/policy/trust-proxy.ts).
    ...(deps.trustProxy ? { trustProxy: (address: string) => deps.trustProxy?.trusts(address) ?? false } : {}),
    bodyLimit: options.maxPayload * 2 + 4096,
    // Upgraded sockets are closed by the hub; plain keep-alive ones must not hold close().
    forceCloseConnections: true,
    // Route schemas check types as JSON has them: "1" is not the qos 1, 5 is not a payload.
    ajv: { customOptions: { coerceTypes: false } }
  })

  // Fastify's own JSON parser (prototype-poisoning checks kept), after the nesting bound
  // that keeps a deep body from stalling the loop in JSON.parse (json-guard.ts).
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonTooDeep(body as string)) return done(new FusionError('BAD_JSON', `the body nests objects or arrays more than ${MAX_JSON_DEPTH} deep`), undefined)
    parseJson(req, body as string, done)
  })

  app.addHook('onSend', async (_req, reply) => {
    reply.header('Content-Security-Policy', CSP)
    reply.header('X-Content-Type-Options', 'nosniff')
    reply.header('X-Frame-Options', 'DENY')
    reply.header('Referrer-Policy', 'no-referrer')
    reply.header('Cross-Origin-Opener-Policy', 'same-origin')
    // Once a browser has seen https here, it never tries plain http (no downgrade).
    if (deps.https) reply.header('Strict-Transport-Security', 'max-age=15552000')
  })

  app.setErrorHandler((err: FastifyError | FusionError, _req, reply) => {
    if (err instanceof FusionError) {
      return reply.status(err.status).send({ statusCode: err.status, code: err.code, message: err.message })
    }
    const status = err.statusCode ?? 500
    if (status >= 500) {
      return reply.status(500).send({ statusCode: 500, code: 'INTERNAL', message: 'internal error' })
    }
    const code = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError
      ? 'BAD_JSON'
      : status === 413 ? 'TOO_LARGE' : status === 415 ? 'BAD_FRAME' : 'BAD_FRAME'
    return reply.status(status).send({ statusCode: status, code, message: err.message })
  })
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ statusCode: 404, code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` })
  })

  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/', index: ['index.html'] })
  await app.register(fastifyStatic, { root: MQTT_DIST, prefix: '/vendor/mqtt/', decorateReply: false })
  await registerExamplePages(app)

  policy?.registerDeadline(app)
  await app.register(statusRoutes, { stats, statsExtra: deps.statsExtra, health: deps.health, policy })
  await app.register(historyRoutes, { options, history, reads: deps.reads, acl, policy })
  await app.register(publishRoutes, { bridge, admit, stats, policy })
  if (policy) await app.register(loginRoutes, { policy })
  if (deps.presence) registerPresenceRoute(app, { presence: deps.presence, acl, policy })
  await app.register(aclExplainRoutes, { acl, policy })
  await app.register(benchRoutes, {})

  return app
}
