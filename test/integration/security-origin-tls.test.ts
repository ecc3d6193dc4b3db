// Origin checks on both WebSocket doors and the API, security headers, and TLS:
// https/wss on the HTTP port and mqtts, named in the ready line.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import WebSocket from 'ws'
import { HubClient, openHub, requireProgram, startGateway } from '../helpers/gateway.js'
import { startCli } from '../helpers/cli.js'
import { assertHealthy, getJson, postJson } from '../helpers/security.js'

/** The HTTP status of a WebSocket upgrade to `url` with `headers` (101 when accepted). */
function upgradeStatus (url: string, headers: Record<string, string>, protocol?: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocol ? [protocol] : [], { headers })
    ws.on('open', () => { resolve(101); ws.terminate() })
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.on('error', () => resolve(0))
  })
}

t.test('a page of another origin cannot open /ws or /mqtt, nor post to the API', async (t) => {
  const { urls } = await startGateway(t)
  const own = new URL(urls.http).origin
  for (const path of [urls.ws, urls['mqtt-ws']]) {
    const proto = path.endsWith('/mqtt') ? 'mqtt' : undefined
    t.equal(await upgradeStatus(path, { origin: 'http://evil.example' }, proto), 403, `${path}: a foreign Origin is refused with 403`)
    t.equal(await upgradeStatus(path, { origin: 'null' }, proto), 403, `${path}: an opaque (null) Origin too`)
    t.equal(await upgradeStatus(path, { origin: own }, proto), 101, `${path}: the page's own origin is accepted`)
    t.equal(await upgradeStatus(path, {}, proto), 101, `${path}: no Origin (command line, devices) is accepted`)
  }
  const post = await postJson(`${urls.http}/api/publish`, { topic: 'a/b', payload: 'x' }, { origin: 'http://evil.example' })
  t.equal(post.status, 403)
  t.equal(post.json.code, 'ACL_DENIED')
  t.equal((await postJson(`${urls.http}/api/publish`, { topic: 'a/b', payload: 'x' }, { origin: own })).status, 200)
  const page = await getJson(`${urls.http}/`)
  for (const h of ['content-security-policy', 'x-content-type-options', 'x-frame-options', 'referrer-policy']) {
    t.ok(page.headers.get(h), `the page carries ${h}`)
  }
  await assertHealthy(t, urls, 'foreign origins')
})

t.test('--allow-origin widens the list', async (t) => {
  const { urls } = await startGateway(t, { allowOrigin: 'http://good.example, https://also.example' })
  t.equal(await upgradeStatus(urls.ws, { origin: 'http://good.example' }), 101)
  t.equal(await upgradeStatus(urls.ws, { origin: 'https://also.example' }), 101)
  t.equal(await upgradeStatus(urls.ws, { origin: 'http://evil.example' }), 403)
})

t.test('TLS: https and wss on the HTTP port, mqtts, named in the ready line', async (t) => {
  if (!requireProgram(t, 'openssl', 'openssl')) return
  const dir = mkdtempSync(join(tmpdir(), 'fusion-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore', timeout: 30_000 })
  const ca = readFileSync(cert)
  const cli = await startCli(t, ['--memory', '--tls-cert', cert, '--tls-key', key, '--mqtts-port', '0'])
  const u = cli.urls
  const https = u.https ?? ''
  const wss = u.wss ?? ''
  const mqtts = u.mqtts ?? ''
  t.match(cli.readyLine, /^mqtt-fusion ready http=\S+ ws=\S+ mqtt-ws=\S+ mqtt=\S+ https=\S+ wss=\S+ mqtt-wss=\S+ mqtts=\S+$/)
  t.match(u.https, /^https:\/\/127\.0\.0\.1:\d+$/)
  t.match(u.wss, /^wss:\/\/127\.0\.0\.1:\d+\/ws$/)
  t.match(u.mqtts, /^mqtts:\/\/127\.0\.0\.1:\d+$/)
  t.match(u.mqtt, /^mqtt:\/\//, 'mqtt= still names the plain TCP door')
  t.equal(u.http, u.https, 'http= names the https door (the port speaks TLS only)')

  const res = await new Promise<{ status: number, hsts: string | undefined, body: string }>((resolve, reject) => {
    const req = request(`${https}/api/health`, { ca, timeout: 5000 }, (r) => {
      let body = ''
      r.on('data', (d) => { body += d })
      r.on('end', () => resolve({ status: r.statusCode ?? 0, hsts: r.headers['strict-transport-security'] as string | undefined, body }))
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(res.status, 200, 'https serves')
  t.match(res.body, /"status":"ok"/)
  t.ok(res.hsts, 'with Strict-Transport-Security')
  const plain = await fetch(`http://127.0.0.1:${new URL(https).port}/api/health`, { signal: AbortSignal.timeout(3000) }).then(() => 'answered', () => 'failed')
  t.equal(plain, 'failed', 'plain http on the TLS port gets nothing')

  const ws = new WebSocket(`${wss}?room=tls&name=tls`, { ca })
  const hub = new HubClient(ws)
  t.teardown(() => hub.close())
  await hub.waitJson('history')
  const m = await mqtt.connectAsync(mqtts, { ca, clientId: 'tls-device', reconnectPeriod: 0, connectTimeout: 5000 })
  t.teardown(() => m.endAsync(true))
  await m.subscribeAsync('chat/tls')
  const got = new Promise<string>((resolve) => m.on('message', (_topic, p) => resolve(p.toString())))
  hub.send({ type: 'chat', text: 'over wss' })
  t.match(await got, /over wss/, 'wss -> mqtts')
  await m.publishAsync('chat/tls', 'over mqtts')
  await hub.waitMessage('chat/tls', (f) => f.payload === 'over mqtts')
  const mws = await mqtt.connectAsync(u['mqtt-wss'] as string, { ca, clientId: 'tls-page', reconnectPeriod: 0, connectTimeout: 5000 } as never)
  t.teardown(() => mws.endAsync(true))
  t.ok(mws.connected, 'MQTT over wss')
  const wrong = await mqtt.connectAsync(mqtts, { clientId: 'no-ca', reconnectPeriod: 0, connectTimeout: 3000 }).then((c) => { c.end(true); return 'connected' }, () => 'refused')
  t.equal(wrong, 'refused', 'a client that does not trust the certificate does not connect')
})

t.test('TLS options are checked', async (t) => {
  await t.rejects(startGateway(t, { tlsCert: '/nonexistent/cert.pem' }), { code: 'BAD_OPTION', message: /--tls-cert and --tls-key go together/ })
  await t.rejects(startGateway(t, { tlsCert: '/nonexistent/cert.pem', tlsKey: '/nonexistent/key.pem' }), { code: 'BAD_OPTION', message: /--tls-cert \/nonexistent\/cert.pem cannot be read/ })
  // the anonymous demo is untouched by all of this
  const hub = await (async () => { const { urls } = await startGateway(t); return openHub(t, urls.ws) })()
  t.equal((await hub.waitJson('welcome')).type, 'welcome')
})
