import type { FastifyPluginAsync } from 'fastify'
import { FusionError } from '../../../core/errors.js'
import type { Acl } from '../../../core/policy/acl.js'
import type { HttpPolicy } from '../http-policy.js'
import { checkUsername } from '../../../core/policy/users.js'

/** Longest topic or filter the explainer reads: a rules file's own limit. */
const MAX_TARGET = 65535
/** Longest client id asked about (MQTT 3.1.1 allows 65535 bytes; explanation needs less). */
const MAX_CLIENT_ID = 1024

/**
 * GET /api/acl/explain?access=read|write&topic=T[&user=NAME][&client=ID]: the ACL's own
 * decision for that user and client, and the rule (file and line) that made it, as
 * `mqtt-fusion acl check` prints it. For users marked admin only: the answer shows the
 * rules, which are the gateway's secrets.
 */
export interface AclExplainDeps {
  readonly acl: Acl
  readonly policy?: HttpPolicy | undefined
}

export const aclExplainRoutes: FastifyPluginAsync<AclExplainDeps> = async (app, { acl, policy }) => {
  app.get('/api/acl/explain', async (req, reply) => {
    if (!policy) throw new FusionError('NOT_FOUND', 'auth is off (no --users): the admin API needs a user marked admin')
    policy.checkAdmin(req)
    const q = req.query as Record<string, unknown>
    const access = q.access
    if (access !== 'read' && access !== 'write') throw new FusionError('BAD_FRAME', 'access must be read or write')
    const topic = q.topic
    if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_TARGET) throw new FusionError('BAD_FRAME', `topic must be a topic (write) or filter (read) of 1 to ${MAX_TARGET} characters`)
    const user = q.user
    if (user !== undefined && (typeof user !== 'string' || checkUsername(user) !== undefined)) throw new FusionError('BAD_FRAME', 'user must be a user name (letters, digits, . _ @ -), or left out for anonymous')
    const client = q.client
    if (client !== undefined && (typeof client !== 'string' || client.length === 0 || client.length > MAX_CLIENT_ID)) throw new FusionError('BAD_FRAME', `client must be a client id of 1 to ${MAX_CLIENT_ID} characters`)
    if (!acl.explain) throw new FusionError('NOT_FOUND', 'this ACL cannot explain its decisions')
    let decision
    try {
      decision = acl.explain({ username: user, clientId: client }, access, topic)
    } catch (err) {
      // A bad topic is bad input here, as on every door.
      if (err instanceof FusionError) throw err
      throw new FusionError('BAD_TOPIC', (err as Error).message)
    }
    reply.header('Cache-Control', 'no-store')
    return { access, topic, user: user ?? null, client: client ?? null, ...decision }
  })
}
