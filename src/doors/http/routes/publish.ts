import { performance } from 'node:perf_hooks'
import type { FastifyPluginAsync } from 'fastify'
import type { Admit } from '../../../core/admit.js'
import type { Stats } from '../../../core/stats.js'
import type { Bridge } from '../../../engine/bridge.js'
import type { HttpCaller, HttpPolicy } from '../http-policy.js'

export interface PublishRoutesDeps {
  readonly bridge: Bridge
  readonly admit: Admit
  readonly stats: Stats
  readonly policy?: HttpPolicy | undefined
}

const body = {
  type: 'object',
  required: ['topic', 'payload'],
  properties: {
    topic: { type: 'string' },
    payload: { type: 'string' },
    qos: { enum: [0, 1] },
    retain: { type: 'boolean' },
    encoding: { enum: ['base64', 'utf8'] },
    from: { type: 'string' }
  }
} as const

interface PublishBody { topic: string, payload: string, qos?: 0 | 1, retain?: boolean, encoding?: 'base64' | 'utf8', from?: string }

/** POST /api/publish {topic, payload, qos, retain, encoding}: one message into the topic space, through `admit`. */
export const publishRoutes: FastifyPluginAsync<PublishRoutesDeps> = async (app, { bridge, admit, stats, policy }) => {
  app.post('/api/publish', {
    schema: { body },
    // Origin, rate and token before the body is looked at.
    onRequest: async (req) => { (req as { caller?: HttpCaller }).caller = policy?.checkPublish(req) ?? {} }
  }, async (req, reply) => {
    // The body is read and parsed: the door has the message (the gateway share starts here).
    const at = performance.now()
    const caller = (req as { caller?: HttpCaller }).caller ?? {}
    const b = req.body as PublishBody
    const payload = Buffer.from(b.payload, b.encoding === 'base64' ? 'base64' : 'utf8')
    // With auth on, the sender is the user who proved it, not a name in the body.
    const from = caller.username ?? b.from ?? 'http'
    const ok = admit({
      source: 'http-publish',
      who: { clientId: `http-${req.ip}`, username: caller.username, door: 'http' },
      name: from.trim() ? from : 'http',
      topic: b.topic,
      payload,
      wrapChat: true
    })
    stats.doors.http.messagesIn++
    await bridge.publish({ topic: ok.topic, payload: ok.payload, qos: b.qos ?? 0, retain: b.retain ?? false, origin: ok.origin, received: { door: 'http', at } })
    return reply.status(200).send({ ok: true, topic: ok.topic, ts: ok.origin.ts })
  })
}
