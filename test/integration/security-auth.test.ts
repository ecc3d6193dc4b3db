// Auth on (a users file): one user store for every door. MQTT logs in with a password
// (CONNACK 4/5 otherwise), pages log in over HTTP and carry a short-lived token to /ws,
// /mqtt and POST /api/publish; a missing, bad, expired or forged token is refused.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { generate } from 'mqtt-packet'
import WebSocket from 'ws'
import { openHub, openMqtt, startGateway, nextMqttMessage } from '../helpers/gateway.js'
import { BIN, PROJECT_DIR, startCli } from '../helpers/cli.js'
import { addUser } from '../../src/core/policy/users.js'
import { signToken, SECRET_FILE_NAME } from '../../src/core/policy/token.js'
import { assertHealthy, getJson, portOf, postJson, RawConn } from '../helpers/security.js'

const dir = mkdtempSync(join(tmpdir(), 'fusion-auth-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const usersFile = join(dir, 'users')
await addUser(usersFile, 'alice', 'alice-pw')
await addUser(usersFile, 'bob', 'bob-pw')

/** The CONNACK return code a raw CONNECT gets on the MQTT/TCP door. */
async function connack (mqttUrl: string, fields: Record<string, unknown>): Promise<number | undefined> {
  const c = new RawConn(portOf(mqttUrl))
  try {
    await c.opened
    c.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'c-auth', keepalive: 30, ...fields } as never))
    const b = await c.waitBytes(4, 5000)
    return b[0] === 0x20 ? b[3] : undefined
  } finally {
    c.destroy()
  }
}

/** Opens /ws and resolves with what a refused client sees: the error frame and the close code. */
async function refusedHub (wsUrl: string, query: Record<string, string>, headers: Record<string, string> = {}): Promise<{ error: any, code: number }> {
  const u = new URL(wsUrl)
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v)
  const ws = new WebSocket(u, { headers })
  let error: any
  ws.on('message', (d) => { const f = JSON.parse(d.toString()); if (f.type === 'error') error = f })
  ws.on('error', () => {})
  const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)))
  return { error, code }
}

async function login (http: string, username: string, password: string): Promise<string> {
  const r = await postJson(`${http}/api/login`, { username, password })
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.json)}`)
  return r.json.token as string
}

t.test('MQTT/TCP: a password in CONNECT, CONNACK 4 or 5 without one', async (t) => {
  const { urls } = await startGateway(t, { users: usersFile })
  t.equal(await connack(urls.mqtt, {}), 5, 'no credentials: 5 (not authorized)')
  t.equal(await connack(urls.mqtt, { username: 'alice', password: Buffer.from('wrong') }), 4, 'a wrong password: 4')
  t.equal(await connack(urls.mqtt, { username: 'mallory', password: Buffer.from('alice-pw') }), 4, 'an unknown user: 4')
  t.equal(await connack(urls.mqtt, { username: 'alice', password: Buffer.from('alice-pw') }), 0, 'the right password: 0')
  // The user name is who the message is from.
  const token = await login(urls.http, 'bob', 'bob-pw')
  const hub = await openHub(t, urls.ws, { room: 'auth', token })
  await hub.waitJson('history')
  const a = await openMqtt(t, urls.mqtt, { clientId: 'alice-dev', username: 'alice', password: 'alice-pw' })
  await a.publishAsync('chat/auth', 'hi from a device')
  const m = await hub.waitMessage('chat/auth')
  t.equal(m.from, 'alice')
  await assertHealthy(t, urls, 'MQTT logins', { hubQuery: { token }, mqtt: { username: 'alice', password: 'alice-pw' } })
})

t.test('POST /api/login, then the token on /ws: missing, bad, expired, forged', async (t) => {
  const { urls } = await startGateway(t, { users: usersFile })
  const wrong = await postJson(`${urls.http}/api/login`, { username: 'alice', password: 'nope' })
  t.equal(wrong.status, 401)
  t.same(wrong.json, { statusCode: 401, code: 'NOT_AUTHORIZED', message: 'wrong user name or password' })
  const ok = await postJson(`${urls.http}/api/login`, { username: 'alice', password: 'alice-pw' })
  t.equal(ok.status, 200)
  t.equal(ok.json.username, 'alice')
  t.ok(ok.json.expiresAt > Date.now() + 9 * 60_000 && ok.json.expiresAt <= Date.now() + 10 * 60_000, 'lives ten minutes')
  const cookie = ok.headers.get('set-cookie') ?? ''
  t.match(cookie, /^fusion_token=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict$/, 'an HttpOnly, SameSite=Strict cookie')
  const token = ok.json.token as string

  const none = await refusedHub(urls.ws, {})
  t.equal(none.code, 1008, 'no token: 1008')
  t.equal(none.error?.code, 'NOT_AUTHORIZED')
  const bad = await refusedHub(urls.ws, { token: 'not-a-token' })
  t.same([bad.code, bad.error?.code], [1008, 'NOT_AUTHORIZED'], 'a bad token')
  const secret = Buffer.from(readFileSync(join(dir, SECRET_FILE_NAME), 'utf8').trim(), 'hex')
  const expired = await refusedHub(urls.ws, { token: signToken(secret, 'alice', -1000).token })
  t.same([expired.code, expired.error?.code], [1008, 'NOT_AUTHORIZED'], 'an expired token')
  t.match(expired.error?.message, /expired/)
  const forged = await refusedHub(urls.ws, { token: signToken(Buffer.from('a secret the gateway does not have'), 'alice', 60_000).token })
  t.same([forged.code, forged.error?.code], [1008, 'NOT_AUTHORIZED'], 'a token signed with another secret')
  const [v, , mac] = token.split('.')
  const swapped = `${v}.${Buffer.from(JSON.stringify({ u: 'bob', exp: Date.now() + 60_000 })).toString('base64url')}.${mac}`
  const other = await refusedHub(urls.ws, { token: swapped })
  t.same([other.code, other.error?.code], [1008, 'NOT_AUTHORIZED'], 'a token whose user was changed')

  const viaQuery = await openHub(t, urls.ws, { token, name: 'someone-else' })
  t.equal((await viaQuery.waitJson('welcome')).name, 'alice', 'the name is the user, not the name asked for')
  const viaCookie = await openHub(t, urls.ws, {}, { cookie: `fusion_token=${encodeURIComponent(token)}` })
  t.equal((await viaCookie.waitJson('welcome')).name, 'alice', 'the cookie works too')
  await assertHealthy(t, urls, 'bad tokens', { hubQuery: { token }, mqtt: { username: 'bob', password: 'bob-pw' } })
})

t.test('/mqtt: the token on the upgrade, or a password in CONNECT', async (t) => {
  const { urls } = await startGateway(t, { users: usersFile })
  const token = await login(urls.http, 'alice', 'alice-pw')
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`${urls['mqtt-ws']}?token=forged.token.here`, 'mqtt')
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.on('error', () => {})
  })
  t.equal(refused, 401, 'a bad token: the upgrade is refused with 401')
  const byToken = await openMqtt(t, `${urls['mqtt-ws']}?token=${encodeURIComponent(token)}`, { clientId: 'page-1' })
  t.ok(byToken.connected, 'a good token: CONNECT needs no password')
  const byPassword = await openMqtt(t, urls['mqtt-ws'], { clientId: 'page-2', username: 'bob', password: 'bob-pw' })
  t.ok(byPassword.connected, 'no token: a password in CONNECT')
  const err = await mqtt.connectAsync(urls['mqtt-ws'], { clientId: 'page-3', reconnectPeriod: 0, connectTimeout: 5000 }).then((c) => { c.end(true); return undefined }, (e: { code?: number }) => e)
  t.equal(err?.code, 5, 'neither: CONNACK 5')
  // Who the messages are from follows the token's user.
  await byPassword.subscribeAsync('chat/mqttws')
  const got = nextMqttMessage(byPassword, (topic) => topic === 'chat/mqttws')
  await byToken.publishAsync('chat/mqttws', 'x')
  t.equal((await got).payload.toString(), 'x')
  await assertHealthy(t, urls, '/mqtt logins', { hubQuery: { token }, mqtt: { username: 'bob', password: 'bob-pw' } })
})

t.test('POST /api/publish needs the token', async (t) => {
  const { urls } = await startGateway(t, { users: usersFile })
  const token = await login(urls.http, 'alice', 'alice-pw')
  const hub = await openHub(t, urls.ws, { room: 'rest', token })
  await hub.waitJson('history')
  const none = await postJson(`${urls.http}/api/publish`, { topic: 'chat/rest', payload: 'x' })
  t.equal(none.status, 401)
  t.equal(none.json.code, 'NOT_AUTHORIZED')
  t.equal(none.json.statusCode, 401)
  t.type(none.json.message, 'string')
  const bad = await postJson(`${urls.http}/api/publish`, { topic: 'chat/rest', payload: 'x' }, { authorization: 'Bearer v1.bad.token' })
  t.equal(bad.status, 401)
  const ok = await postJson(`${urls.http}/api/publish`, { topic: 'chat/rest', payload: 'by bearer', from: 'mallory' }, { authorization: `Bearer ${token}` })
  t.equal(ok.status, 200)
  const m = await hub.waitMessage('chat/rest', (f) => f.payload === 'by bearer')
  t.equal(m.from, 'alice', 'from is the user, whatever the body says')
  const byCookie = await postJson(`${urls.http}/api/publish`, { topic: 'chat/rest', payload: 'by cookie' }, { cookie: `fusion_token=${token}` })
  t.equal(byCookie.status, 200)
  const history = await getJson(`${urls.http}/api/history?topic=chat/rest`)
  t.equal(history.status, 401, 'reading the history needs the token too')
  const withToken = await getJson(`${urls.http}/api/history?topic=chat/rest`, { authorization: `Bearer ${token}` })
  t.equal(withToken.status, 200)
  t.equal(withToken.json.messages.length, 2)
})

t.test('password guessing against one user: after 10 failures it waits, on every door; others are not affected', async (t) => {
  const { urls } = await startGateway(t, { users: usersFile })
  // Ten wrong guesses, from MQTT and HTTP alike: one count per user name.
  for (let i = 0; i < 8; i++) t.equal(await connack(urls.mqtt, { username: 'alice', password: Buffer.from(`guess-${i}`) }), 4, `MQTT guess ${i + 1}: CONNACK 4`)
  for (let i = 8; i < 10; i++) t.equal((await postJson(`${urls.http}/api/login`, { username: 'alice', password: `guess-${i}` })).status, 401, `HTTP guess ${i + 1}: 401`)
  const waiting = await postJson(`${urls.http}/api/login`, { username: 'alice', password: 'alice-pw' })
  t.equal(waiting.status, 429, 'then even the right password waits: 429')
  t.match(waiting.json, { code: 'RATE_LIMITED', message: /too many failed logins for this user name; try again in 1 s/ })
  t.equal(await connack(urls.mqtt, { username: 'alice', password: Buffer.from('alice-pw') }), 3, 'and MQTT CONNECT is refused with CONNACK 3 (server unavailable)')
  t.equal(await connack(urls.mqtt, { username: 'bob', password: Buffer.from('bob-pw') }), 0, 'bob logs in meanwhile')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal(await connack(urls.mqtt, { username: 'alice', password: Buffer.from('alice-pw') }), 0, 'after the wait alice logs in, and the count starts again')
  t.equal((await postJson(`${urls.http}/api/login`, { username: 'alice', password: 'alice-pw' })).status, 200)
})

t.test('without a users file nothing changes: anonymous, no login', async (t) => {
  const { urls } = await startGateway(t)
  const r = await postJson(`${urls.http}/api/login`, { username: 'alice', password: 'alice-pw' })
  t.equal(r.status, 404)
  t.equal(r.json.code, 'NOT_FOUND')
  t.equal((await postJson(`${urls.http}/api/publish`, { topic: 'x/y', payload: 'z' })).status, 200)
  await assertHealthy(t, urls, 'anonymous use')
})

t.test('mqtt-fusion user add, then the built gateway with --users', async (t) => {
  const file = join(dir, 'cli-users')
  const run = (args: string[], input: string): Promise<{ code: number | null, stderr: string }> => new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: PROJECT_DIR, stdio: ['pipe', 'pipe', 'pipe'] })
    let stderr = ''
    p.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000)
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }) })
    p.stdin.end(input)
  })
  const added = await run(['user', 'add', 'carol', '--users', file, '--password-stdin'], 'carol-pw\n')
  t.equal(added.code, 0, added.stderr)
  t.match(added.stderr, /added carol/)
  t.notMatch(added.stderr, /carol-pw/, 'the password is never echoed')
  t.notMatch(readFileSync(file, 'utf8'), /carol-pw/, 'nor stored')
  const bad = await run(['user', 'add', 'no/slash', '--users', file], 'x\n')
  t.equal(bad.code, 2)
  const cli = await startCli(t, ['--memory', '--users', file])
  t.equal(await connack(cli.urls.mqtt, { username: 'carol', password: Buffer.from('carol-pw') }), 0)
  t.equal(await connack(cli.urls.mqtt, { username: 'carol', password: Buffer.from('nope') }), 4)
  t.match(cli.stderr(), /auth is on: 1 user/)
})
