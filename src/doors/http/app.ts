import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance, type FastifyError } from 'fastify'
import fastifyStatic from '@fastify/static'
import { FusionError } from '../../core/errors.js'
import type { Bridge } from '../../engine/bridge.js'
import type { HistoryStore } from '../../core/history/history-store.js'
import type { Admit } from '../../core/admit.js'
import type { Acl } from '../../core/policy/acl.js'
import type { Stats } from '../../core/stats.js'
import type { GatewayOptions } from '../../core/options.js'
import { encodeEnvelope } from '../../core/topics/envelope.js'
import { checkTopicName, chatRoomOf } from '../../core/topics/topic-rules.js'
import { renderMetrics } from './metrics.js'
import type { HttpPolicy } from './http-policy.js'
import { registerPresenceRoute } from './presence-route.js'
import type { PresenceTracker } from '../../engine/presence.js'
import type { TrustedProxies } from '../../core/policy/trust-proxy.js'

export interface AppDeps {
  readonly options: Readonly<GatewayOptions>
  readonly bridge: Bridge
  readonly history: HistoryStore
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
    forceCloseConnections: true
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

  app.get('/api/health', async (_req, reply) => {
    const h = deps.health()
    return reply.status(h.ready ? 200 : 503).send({ status: h.ready ? 'ok' : 'unavailable', ...h.detail })
  })

  app.get('/api/stats', async () => stats.snapshot(deps.statsExtra()))

  app.get('/metrics', async (_req, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8')
    return renderMetrics(stats, deps.statsExtra())
  })

  policy?.register(app)

  app.get('/api/history', async (req) => {
    const caller = policy?.checkRead(req) ?? {}
    const q = req.query as Record<string, string | undefined>
    const topic = checkTopicName(q.topic ?? 'chat/lobby', options)
    acl.checkSubscribe({ clientId: `http-${req.ip}`, username: caller.username, door: 'http' }, topic)
    const limit = intParam(q.limit, 'limit', options.historyLimit, 1, 10_000)
    const since = q.since === undefined ? undefined : intParam(q.since, 'since', 0, 0, Number.MAX_SAFE_INTEGER)
    const messages = since === undefined ? await history.last(topic, limit) : await history.since(topic, since, limit)
    return { topic, messages, lastSeq: history.lastSeq(topic) }
  })

  if (deps.presence) registerPresenceRoute(app, { presence: deps.presence, acl, policy })

  app.post('/api/publish', async (req, reply) => {
    const caller = policy?.checkPublish(req) ?? {}
    const body = req.body as Record<string, unknown> | undefined
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new FusionError('BAD_FRAME', 'the body must be a JSON object')
    const topic = checkTopicName(body.topic, options)
    if (typeof body.payload !== 'string') throw new FusionError('BAD_FRAME', 'payload must be a string')
    const qos = body.qos ?? 0
    if (qos !== 0 && qos !== 1) throw new FusionError('BAD_FRAME', 'qos must be 0 or 1')
    const retain = body.retain ?? false
    if (typeof retain !== 'boolean') throw new FusionError('BAD_FRAME', 'retain must be true or false')
    let payload: Buffer
    if (body.encoding === 'base64') payload = Buffer.from(body.payload, 'base64')
    else if (body.encoding === undefined || body.encoding === 'utf8') payload = Buffer.from(body.payload, 'utf8')
    else throw new FusionError('BAD_FRAME', 'encoding must be "base64" or left out')
    // With auth on, the sender is the user who proved it, not a name in the body.
    const from = caller.username ?? (typeof body.from === 'string' ? body.from : undefined) ?? 'http'
    const ok = admit({
      source: 'http-publish',
      who: { clientId: `http-${req.ip}`, username: caller.username, door: 'http' },
      name: from.trim() ? from : 'http',
      topic,
      payload,
      wrapChat: true
    })
    stats.doors.http.messagesIn++
    await bridge.publish({ topic: ok.topic, payload: ok.payload, qos, retain, origin: ok.origin })
    const ts = ok.origin.ts
    return reply.status(200).send({ ok: true, topic, ts })
  })

  return app
}

function intParam (raw: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return dflt
  if (!/^\d+$/.test(raw)) throw new FusionError('BAD_FRAME', `${name} must be a whole number`)
  const n = Number(raw)
  if (n < min || n > max) throw new FusionError('BAD_FRAME', `${name} must be from ${min} to ${max}`)
  return n
}
