// Issue 13 item 11: with auth on, /api/stats and /metrics need a token (a login token, or
// the fixed --metrics-token for a scraper); /api/health stays open; with auth off nothing changes.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway } from '../helpers/gateway.js'
import { addUser } from '../../src/core/policy/users.js'
import { resolveOptions } from '../../src/core/options.js'
import { getJson, postJson } from '../helpers/security.js'

const dir = mkdtempSync(join(tmpdir(), 'fusion-metrics-auth-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const usersFile = join(dir, 'users')
await addUser(usersFile, 'alice', 'alice-pw')
const METRICS_TOKEN = 'scraper-secret-0123456789'

t.test('auth on: the figures need a token', async (t) => {
  const { urls } = await startGateway(t, { users: usersFile, metricsToken: METRICS_TOKEN })
  const login = await postJson(`${urls.http}/api/login`, { username: 'alice', password: 'alice-pw' })
  t.equal(login.status, 200)
  const token = login.json.token as string
  for (const path of ['/api/stats', '/metrics']) {
    const none = await getJson(`${urls.http}${path}`)
    t.equal(none.status, 401, `${path} without a token: 401`)
    t.equal(none.json.code, 'NOT_AUTHORIZED')
    t.equal((await getJson(`${urls.http}${path}`, { authorization: `Bearer ${token}` })).status, 200, `${path} with a login token (Bearer): 200`)
    t.equal((await getJson(`${urls.http}${path}`, { cookie: `fusion_token=${token}` })).status, 200, `${path} with the page's cookie: 200`)
    t.equal((await getJson(`${urls.http}${path}`, { authorization: `Bearer ${METRICS_TOKEN}` })).status, 200, `${path} with --metrics-token: 200`)
    t.equal((await getJson(`${urls.http}${path}`, { authorization: `bearer ${METRICS_TOKEN}` })).status, 200, `${path}: the scheme is case-insensitive`)
    t.equal((await getJson(`${urls.http}${path}`, { authorization: `Bearer ${METRICS_TOKEN}x` })).status, 401, `${path} with a wrong fixed token: 401`)
    t.equal((await getJson(`${urls.http}${path}?token=${METRICS_TOKEN}`)).status, 401, `${path}: the fixed token only as a header (not logged in URLs)`)
  }
  t.equal((await getJson(`${urls.http}/api/health`)).status, 200, '/api/health stays open (orchestrators probe it)')
})

t.test('auth off: unchanged, open', async (t) => {
  const { urls } = await startGateway(t)
  t.equal((await getJson(`${urls.http}/api/stats`)).status, 200)
  t.equal((await getJson(`${urls.http}/metrics`)).status, 200)
})

t.test('--metrics-token is at least 16 characters', async (t) => {
  t.throws(() => resolveOptions({ metricsToken: 'short' }), { code: 'BAD_OPTION', message: /--metrics-token must be at least 16 characters/ })
  t.equal(resolveOptions({ metricsToken: METRICS_TOKEN }).metricsToken, METRICS_TOKEN)
})
