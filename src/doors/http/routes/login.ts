import type { FastifyPluginAsync } from 'fastify'
import type { Auth } from '../../../core/policy/auth.js'
import type { HttpPolicy } from '../http-policy.js'

const body = {
  type: 'object',
  properties: { username: { type: 'string', maxLength: 256 }, password: { type: 'string', maxLength: 1024 } }
} as const

/** POST /api/login {username, password} -> {token, expiresAt, username} plus the cookie. */
export const loginRoutes: FastifyPluginAsync<{ policy: HttpPolicy }> = async (app, { policy }) => {
  app.post('/api/login', {
    schema: { body },
    // Origin and the per-address rate before the body is looked at.
    onRequest: async (req) => { (req as { auth?: Auth }).auth = policy.checkLogin(req) }
  }, async (req, reply) => {
    const auth = (req as { auth?: Auth }).auth as Auth
    const b = (req.body ?? {}) as { username?: unknown, password?: unknown }
    const t = await auth.login(b.username, b.password, req.ip)
    reply.header('Set-Cookie', policy.cookieFor(auth, t))
    reply.header('Cache-Control', 'no-store')
    return { token: t.token, expiresAt: t.expiresAt, username: t.username }
  })
}
