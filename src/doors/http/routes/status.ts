import type { FastifyPluginAsync } from 'fastify'
import type { Stats } from '../../../core/stats.js'
import { renderMetrics } from '../metrics.js'
import type { HttpPolicy } from '../http-policy.js'

export interface StatusRoutesDeps {
  readonly stats: Stats
  /** Extra figures for /api/stats (bytes per door, broker counts). */
  readonly statsExtra: () => Record<string, unknown>
  readonly health: () => { ready: boolean, detail: Record<string, unknown> }
  /** With auth on, /api/stats and /metrics need a token (issue 13): they tell who is connected and how much. */
  readonly policy?: HttpPolicy | undefined
}

const noQuery = { type: 'object' } as const

/** GET /api/health, /api/stats and /metrics: what the gateway is doing. */
export const statusRoutes: FastifyPluginAsync<StatusRoutesDeps> = async (app, deps) => {
  app.get('/api/health', { schema: { querystring: noQuery } }, async (_req, reply) => {
    const h = deps.health()
    return reply.status(h.ready ? 200 : 503).send({ status: h.ready ? 'ok' : 'unavailable', ...h.detail })
  })

  // The latency histogram is read asynchronously (prom-client), so it joins here.
  app.get('/api/stats', { schema: { querystring: noQuery } }, async (req) => {
    deps.policy?.checkMonitor(req)
    return deps.stats.snapshot({ ...deps.statsExtra(), latency: await deps.stats.latency.snapshot() })
  })

  app.get('/metrics', { schema: { querystring: noQuery } }, async (req, reply) => {
    deps.policy?.checkMonitor(req)
    reply.type('text/plain; version=0.0.4; charset=utf-8')
    return renderMetrics(deps.stats, deps.statsExtra()) + await deps.stats.latency.metrics()
  })
}
