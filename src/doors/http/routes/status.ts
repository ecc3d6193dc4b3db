import type { FastifyPluginAsync } from 'fastify'
import type { Stats } from '../../../core/stats.js'
import { renderMetrics } from '../metrics.js'

export interface StatusRoutesDeps {
  readonly stats: Stats
  /** Extra figures for /api/stats (bytes per door, broker counts). */
  readonly statsExtra: () => Record<string, unknown>
  readonly health: () => { ready: boolean, detail: Record<string, unknown> }
}

const noQuery = { type: 'object' } as const

/** GET /api/health, /api/stats and /metrics: what the gateway is doing. */
export const statusRoutes: FastifyPluginAsync<StatusRoutesDeps> = async (app, deps) => {
  app.get('/api/health', { schema: { querystring: noQuery } }, async (_req, reply) => {
    const h = deps.health()
    return reply.status(h.ready ? 200 : 503).send({ status: h.ready ? 'ok' : 'unavailable', ...h.detail })
  })

  app.get('/api/stats', { schema: { querystring: noQuery } }, async () => deps.stats.snapshot(deps.statsExtra()))

  app.get('/metrics', { schema: { querystring: noQuery } }, async (_req, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8')
    return renderMetrics(deps.stats, deps.statsExtra())
  })
}
