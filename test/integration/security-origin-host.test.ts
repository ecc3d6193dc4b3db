// Issue 13 item 10 over the real doors: an https:// page on the plain-http port, a page on
// another port, and a DNS-rebinding page (Origin and Host both evil.example:<port>) are
// refused on /ws, /mqtt and the HTTP API; the page's own origin, localhost and
// --allow-origin still work.
import t from 'tap'
import { request } from 'node:http'
import WebSocket from 'ws'
import { startGateway } from '../helpers/gateway.js'
import { assertHealthy } from '../helpers/security.js'

/** The HTTP status of a WebSocket upgrade to `url` with `headers` (101 when accepted). */
function upgradeStatus (url: string, headers: Record<string, string>, protocol?: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocol ? [protocol] : [], { headers })
    const timer = setTimeout(() => { resolve(-1); ws.terminate() }, 5000)
    ws.on('open', () => { clearTimeout(timer); resolve(101); ws.terminate() })
    ws.on('unexpected-response', (_req, res) => { clearTimeout(timer); resolve(res.statusCode ?? 0); ws.terminate() })
    ws.on('error', () => { clearTimeout(timer); resolve(0) })
  })
}

/** GET `path` from the gateway at 127.0.0.1:port with the given Host header. */
function getWithHost (port: string, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path, headers: { host }, timeout: 5000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    r.on('error', reject)
    r.end()
  })
}

t.test('scheme and port count; a rebound name is refused on every door', async (t) => {
  const { urls } = await startGateway(t)
  const port = new URL(urls.http).port
  const doors: Array<[string, string | undefined]> = [[urls.ws, undefined], [urls['mqtt-ws'], 'mqtt']]
  for (const [url, proto] of doors) {
    t.equal(await upgradeStatus(url, { origin: `https://127.0.0.1:${port}` }, proto), 403, `${url}: an https:// page on the plain-http port`)
    t.equal(await upgradeStatus(url, { origin: `http://127.0.0.1:${Number(port) + 1}` }, proto), 403, `${url}: a page on another port`)
    t.equal(await upgradeStatus(url, { origin: `http://evil.example:${port}`, host: `evil.example:${port}` }, proto), 403, `${url}: DNS rebinding (Origin and Host both evil.example:${port})`)
    t.equal(await upgradeStatus(url, { host: `evil.example:${port}` }, proto), 403, `${url}: a foreign Host without Origin`)
    t.equal(await upgradeStatus(url, { origin: `http://127.0.0.1:${port}` }, proto), 101, `${url}: the page's own origin`)
    t.equal(await upgradeStatus(url.replace('127.0.0.1', 'localhost'), { origin: `http://localhost:${port}` }, proto), 101, `${url}: via localhost`)
  }
  for (const path of ['/api/history', '/api/stats', '/metrics', '/api/health']) {
    t.equal(await getWithHost(port, path, `evil.example:${port}`), 403, `GET ${path} with Host evil.example: 403`)
    const own = await getWithHost(port, path, `127.0.0.1:${port}`)
    t.equal(own, 200, `GET ${path} with Host 127.0.0.1: 200 (got ${own})`)
  }
  const post = await fetch(`${urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json', origin: `https://127.0.0.1:${port}` }, body: JSON.stringify({ topic: 'a/b', payload: 'x' }), signal: AbortSignal.timeout(5000) })
  t.equal(post.status, 403, 'POST from an https:// page on the plain-http port: 403')
  await assertHealthy(t, urls, 'foreign origins and hosts')
})

t.test('--allow-origin still widens the list, and names a proxy\'s public host', async (t) => {
  const { urls } = await startGateway(t, { allowOrigin: 'https://chat.example' })
  const port = new URL(urls.http).port
  t.equal(await upgradeStatus(urls.ws, { origin: 'https://chat.example', host: 'chat.example' }), 101, 'behind a TLS proxy that keeps the public name')
  t.equal(await upgradeStatus(urls.ws, { origin: 'https://chat.example' }), 101, 'a page of the allowed origin')
  t.equal(await upgradeStatus(urls.ws, { origin: `http://evil.example:${port}`, host: `evil.example:${port}` }), 403, 'a rebound name is still refused')
  t.equal(await getWithHost(port, '/api/history', 'chat.example'), 200)
})
