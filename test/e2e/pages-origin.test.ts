// A page served from another origin, in real Chromium: its WebSocket to /ws and /mqtt is
// refused before the upgrade (HTTP 403, issue 5), so it never opens and reads nothing;
// with --allow-origin naming that origin the same page gets its welcome.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { startCli } from '../helpers/cli.js'
import { launchBrowser, requirePrograms } from '../helpers/browser.js'

/** A page on its own port (so its own origin) that opens a socket to `target` and reports. */
async function otherOrigin (t: { teardown (fn: () => unknown): void }): Promise<{ origin: string }> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end('<!doctype html><title>another site</title><p>another site</p>')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

interface Outcome { opened: boolean, code: number | null, frames: string[] }

// Runs in the page: opens a socket, collects what it reads, resolves on close (or after 1.5 s).
const probe = ([url, protocol]: readonly [string, string | undefined]): Promise<Outcome> => new Promise((resolve) => {
  const out: Outcome = { opened: false, code: null, frames: [] }
  const W = (globalThis as any).WebSocket
  const ws = protocol ? new W(url, [protocol]) : new W(url)
  ws.onopen = () => { out.opened = true }
  ws.onmessage = (e: { data: unknown }) => { out.frames.push(typeof e.data === 'string' ? e.data : '(binary)') }
  ws.onclose = (e: { code: number }) => { out.code = e.code; resolve(out) }
  setTimeout(() => { ws.close(); resolve(out) }, 1500)
})

t.test('a page of another origin cannot open /ws or /mqtt (403 before the upgrade); --allow-origin lets it', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const site = await otherOrigin(t)
  const strict = await startCli(t, ['--memory'])
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(`${site.origin}/`)

  // Chromium reports a refused handshake as close code 1006 (abnormal), never as open.
  for (const [door, url, proto] of [['/ws', strict.urls.ws, undefined], ['/mqtt', strict.urls['mqtt-ws'], 'mqtt']] as const) {
    const r = await page.evaluate(probe, [url, proto] as const)
    t.same([r.opened, r.code, r.frames], [false, 1006, []], `${door}: never opens, reads nothing`)
  }
  t.ok(browser.problems.some((p) => /403/.test(p)), `Chromium's console names the 403 (${browser.problems.find((p) => /403/.test(p)) ?? 'none'})`)

  const open = await startCli(t, ['--memory', '--allow-origin', site.origin])
  const allowed = await page.evaluate(probe, [`${open.urls.ws}?name=visitor`, undefined] as const)
  t.equal(allowed.opened, true, 'with --allow-origin the page connects')
  t.match(JSON.parse(allowed.frames[0] ?? '{}'), { type: 'welcome' }, 'and gets its welcome')
})
