import type { FastifyPluginAsync } from 'fastify'
import { FusionError } from '../../../core/errors.js'
import type { HistoryStore } from '../../../core/history/history-store.js'
import { pageAfter, pageLatest, type ReadGate } from '../../../core/history/history-page.js'
import type { GatewayOptions } from '../../../core/options.js'
import type { Acl } from '../../../core/policy/acl.js'
import { checkTopicName } from '../../../core/topics/topic-rules.js'
import type { HttpPolicy } from '../http-policy.js'

export interface HistoryRoutesDeps {
  readonly options: Readonly<GatewayOptions>
  readonly history: HistoryStore
  readonly reads: ReadGate
  readonly acl: Acl
  readonly policy?: HttpPolicy | undefined
}

// Query values arrive as strings; their numbers are read below with our own messages.
const querystring = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    limit: { type: 'string', maxLength: 16 },
    since: { type: 'string', maxLength: 16 }
  }
} as const

/** GET /api/history?topic=&limit=&since=: one page of the stored messages of one topic, oldest first. */
export const historyRoutes: FastifyPluginAsync<HistoryRoutesDeps> = async (app, { options, history, reads, acl, policy }) => {
  app.get('/api/history', {
    schema: { querystring },
    // Who may ask comes before what they asked: a stranger learns nothing from a 400.
    onRequest: async (req) => { (req as { caller?: unknown }).caller = policy?.checkRead(req) ?? {} }
  }, async (req) => {
    const caller = (req as { caller?: { username?: string } }).caller ?? {}
    const q = req.query as { topic?: string, limit?: string, since?: string }
    const topic = checkTopicName(q.topic ?? 'chat/lobby', options)
    acl.checkSubscribe({ clientId: `http-${req.ip}`, username: caller.username, door: 'http' }, topic)
    const limit = intParam(q.limit, 'limit', options.historyLimit, 1, 10_000)
    const since = q.since === undefined ? undefined : intParam(q.since, 'since', 0, 0, Number.MAX_SAFE_INTEGER)
    // One page, bounded in bytes as well as messages; `more` says there is another
    // (older ones for the newest page, newer ones after `since`: ask with since=<last seq>).
    const page = await reads.run(() => since === undefined ? pageLatest(history, topic, limit) : pageAfter(history, topic, since, limit))
    return { topic, messages: page.messages, lastSeq: history.lastSeq(topic), ...(page.more ? { more: true } : {}) }
  })
}

function intParam (raw: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return dflt
  if (!/^\d{1,16}$/.test(raw)) throw new FusionError('BAD_FRAME', `${name} must be a whole number`)
  const n = Number(raw)
  if (n < min || n > max) throw new FusionError('BAD_FRAME', `${name} must be from ${min} to ${max}`)
  return n
}
