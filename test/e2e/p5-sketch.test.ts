// examples/p5 in real Chromium: the page and p5 come from the gateway (no CDN) under the
// strict CSP; examples/device-sim.mjs feeds sensors/<id>/temp and the sketch shows each
// device's live value; moving the pointer over the drawing publishes
// sketch/<name>/pointer, which an MQTT subscriber receives.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { launchBrowser, requirePrograms, screenshot } from '../helpers/browser.js'
import { openMqtt, startGateway, nextMqttMessage } from '../helpers/gateway.js'
import { PROJECT_DIR } from '../helpers/cli.js'
import { runProgram } from '../helpers/program.js'

t.test('the p5 sketch draws live sensors and publishes the pointer', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const { urls } = await startGateway(t)
  const page0 = await fetch(`${urls.http}/examples/p5/`)
  t.equal(page0.status, 200, 'the sketch page is served')
  t.match(page0.headers.get('content-security-policy'), /script-src 'self'/, 'under the strict CSP')
  const lib = await fetch(`${urls.http}/vendor/p5/p5.min.js`)
  t.equal(lib.status, 200, 'p5 is served from node_modules')
  const version = (JSON.parse(readFileSync(join(PROJECT_DIR, 'node_modules', 'p5', 'package.json'), 'utf8')) as { version: string }).version
  t.match(version, /^2\./, 'p5 2.x is installed')
  t.ok((await lib.text()).includes(`"${version}"`), `the file served is that p5 (${version})`)
  t.equal((await fetch(`${urls.http}/examples/p5`, { redirect: 'manual' })).status, 301, '/examples/p5 redirects to the folder')
  t.equal((await fetch(`${urls.http}/vendor/p5/p5.esm.js`)).status, 404, 'only p5.js and p5.min.js are served')

  const sim = runProgram(t, process.execPath, [join(PROJECT_DIR, 'examples', 'device-sim.mjs'),
    '--url', urls.mqtt, '--count', '3', '--prefix', 'p5dev', '--interval', '250', '--duration', '60'])
  t.teardown(() => { sim.proc.kill('SIGINT') })

  const browser = await launchBrowser(t, { viewport: { width: 1000, height: 760 } })
  const page = await browser.newPage()
  await page.goto(`${urls.http}/examples/p5/?name=tester`)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  t.equal(await page.getByTestId('me').textContent(), 'tester')

  // Each device shows up with a value in the device-sim range (18-26 °C).
  const rows = page.locator('tr[data-testid="device-row"]')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('tr[data-testid="device-row"]').length === 3, undefined, { timeout: 15_000 })
  t.same(await rows.evaluateAll((els) => els.map((e) => (e as any).dataset.device)), ['p5dev-1', 'p5dev-2', 'p5dev-3'], 'one row per device, in order')
  for (const v of await page.locator('tr[data-testid="device-row"] td.value').allTextContents()) {
    t.ok(Number(v) >= 18 && Number(v) <= 26, `a live value ${v}`)
  }
  // Live: the readings keep coming.
  const count = async (): Promise<number> => Number(await page.locator('tr[data-device="p5dev-1"] td.count').textContent())
  const before = await count()
  await page.waitForFunction((n) => Number((globalThis as any).document.querySelector('tr[data-device="p5dev-1"] td.count')?.textContent) > n + 1, before, { timeout: 10_000 })
  t.pass(`p5dev-1's readings go on (${before} -> ${await count()})`)

  // The canvas is drawn: p5 is running under the CSP.
  const canvas = page.locator('#canvas canvas')
  await canvas.waitFor()
  const box = await canvas.boundingBox()
  t.ok(box && box.width > 300 && box.height > 300, 'a canvas is on the page')

  const sub = await openMqtt(t, urls.mqtt, { clientId: 'pointer-reader' })
  await sub.subscribeAsync('sketch/+/pointer')
  const got = nextMqttMessage(sub, (topic) => topic === 'sketch/tester/pointer', 10_000)
  await page.mouse.move(box!.x + box!.width * 0.25, box!.y + box!.height * 0.75)
  await page.mouse.move(box!.x + box!.width * 0.25 + 1, box!.y + box!.height * 0.75)
  const msg = await got
  const p = JSON.parse(msg.payload.toString()) as { x: number, y: number, from: string, ts: number }
  t.equal(msg.topic, 'sketch/tester/pointer', 'the MQTT subscriber sees the pointer topic')
  t.ok(Math.abs(p.x - 0.25) < 0.02 && Math.abs(p.y - 0.75) < 0.02, `at the pointer's place (${p.x}, ${p.y})`)
  t.equal(p.from, 'tester')

  await screenshot(page, 'p5-sketch')
  t.same(browser.problems, [], 'no console errors, CSP violations or page errors')
})
