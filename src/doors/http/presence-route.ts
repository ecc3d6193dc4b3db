import type { FastifyInstance } from 'fastify'
import { FusionError } from '../../core/errors.js'
import type { Acl } from '../../core/policy/acl.js'
import type { PresenceTracker } from '../../engine/presence.js'
import type { HttpPolicy } from './http-policy.js'

/** The most clients one page of `GET /api/presence` lists: a page is one bounded answer. */
export const MAX_PRESENCE_PAGE = 500

/**
 * `GET /api/presence?offset=N&limit=M`: who is online, most recent first, `limit` of them
 * (at most MAX_PRESENCE_PAGE) after skipping `offset`; with the total count. The roster a
 * /ws client gets on joining is bounded (`--presence-roster`); this pages through the rest.
 * The caller must be allowed to read `presence/#`, as a /ws client must to get presence.
 */
export function registerPresenceRoute (app: FastifyInstance, deps: { presence: PresenceTracker, acl: Acl, policy?: HttpPolicy | undefined }): void {
  app.get('/api/presence', async (req) => {
    const caller = deps.policy?.checkRead(req) ?? {}
    deps.acl.checkSubscribe({ clientId: `http-${req.ip}`, username: caller.username, door: 'http' }, 'presence/#')
    const q = req.query as Record<string, string | undefined>
    const offset = whole(q.offset, 'offset', 0, 0, 10_000_000)
    const limit = whole(q.limit, 'limit', 100, 1, MAX_PRESENCE_PAGE)
    const clients = deps.presence.page(offset, limit).map((p) => ({ clientId: p.clientId, name: p.name, via: p.via, ts: p.ts }))
    return { online: deps.presence.count, offset, limit, clients }
  })
}

function whole (raw: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return dflt
  // At most 8 digits: the check is linear in a bounded string, and no number loses precision.
  if (!/^\d{1,8}$/.test(raw)) throw new FusionError('BAD_FRAME', `${name} must be a whole number`)
  const n = Number(raw)
  if (n < min || n > max) throw new FusionError('BAD_FRAME', `${name} must be from ${min} to ${max}`)
  return n
}
