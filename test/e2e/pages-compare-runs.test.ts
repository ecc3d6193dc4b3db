// The comparison page's runs in real Chromium: a burst paced under a low --msg-rate comes
// back whole with both connections kept, a fixed rate draws latency over time, a stop
// stops, and the page shows the gateway's share and the bench results beside its own.
import t from 'tap'
import { startCli } from '../helpers/cli.js'
import { launchBrowser, requirePrograms, screenshot, waitForState } from '../helpers/browser.js'
import type { Page } from 'playwright-core'

async function value (page: Page, testId: string): Promise<number> {
  const raw = await page.getByTestId(testId).getAttribute('data-value')
  return raw === null || raw === '' ? NaN : Number(raw)
}

/** Clicks Run and waits for this run (not an earlier one) to end in `state`. */
async function runAndWait (page: Page, states: string[], timeoutMs = 60_000): Promise<string> {
  const run = Number(await page.getByTestId('burst-status').getAttribute('data-run')) + 1
  await page.getByTestId('burst-run').click()
  const status = page.locator(`[data-testid="burst-status"][data-run="${run}"]`)
  await status.and(page.locator(states.map((s) => `[data-state="${s}"]`).join(', '))).waitFor({ state: 'attached', timeout: timeoutMs })
  return await status.getAttribute('data-state') ?? ''
}

async function openPage (t: { teardown (fn: () => unknown): void }, args: string[], room: string): Promise<{ page: Page, problems: string[] }> {
  const gw = await startCli(t, ['--memory', ...args])
  const browser = await launchBrowser(t, { viewport: { width: 1280, height: 1000 } })
  const page = await browser.newPage()
  await page.goto(`${gw.urls.http}/compare.html?room=${room}`)
  await Promise.all([waitForState(page, 'ws-status', 'online'), waitForState(page, 'mqtt-status', 'online')])
  return { page, problems: browser.problems }
}
t.test('a burst over the gateway\'s message rate is paced under it and comes back whole', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  // 40 a second, bursts of 80: unpaced, 120 messages would get RATE_LIMITED on /ws and
  // the MQTT connection closed.
  const { page, problems } = await openPage(t, ['--msg-rate', '40'], 'e2e-paced')
  await page.getByTestId('run-limits').getByText(/allows 40 messages a second/).waitFor()
  await page.getByTestId('burst-n').fill('120')
  const t0 = Date.now()
  t.equal(await runAndWait(page, ['done', 'failed'], 30_000), 'done', 'every message came back')
  const ms = Date.now() - t0
  // 72 at once (90% of 80), then 36 a second: about 1.3 s per door.
  t.ok(ms > 2000, `the page waited for the gateway's allowance (${ms} ms for both doors)`)
  for (const door of ['ws', 'mqtt']) {
    t.match(await page.getByTestId(`burst-row-${door}`).textContent(), /120120/, `${door}: 120 sent, 120 echoed`)
    const p50 = await value(page, `burst-${door}-p50`)
    const gw = await value(page, `burst-${door}-gw`)
    const browser = await value(page, `burst-${door}-browser`)
    // The gateway's share ends at its last write, which may be the copy to the other pane,
    // after this pane's echo left: on a loaded machine it can exceed this pane's round trip.
    t.ok(gw > 0, `${door}: the gateway's share ${gw.toFixed(3)} ms (round trip ${p50.toFixed(2)} ms)`)
    t.ok(Math.abs(Math.min(gw, p50) + browser - p50) < 1e-6, `${door}: gateway + browser = round trip (browser ${browser.toFixed(2)} ms)`)
    t.equal(await page.getByTestId(`${door}-status`).getAttribute('data-state'), 'online', `${door}: still connected`)
    t.match(await page.getByTestId(`share-${door}`).textContent(), /gateway [\d.]+ ms \(mean [\d.]+ ms over \d+ messages/, `${door}: the split is shown`)
  }
  t.notMatch(await page.getByTestId('ws-feed').textContent(), /RATE_LIMITED/, 'no message was refused for its rate')
  t.same(problems, [], 'no console errors, page errors or dialogs')
})

t.test('a fixed rate through both doors draws latency over time; the bench panel sits beside', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const { page, problems } = await openPage(t, [], 'e2e-rate')
  await page.getByTestId('run-mode').selectOption('rate')
  t.ok(await page.getByTestId('burst-n').isHidden(), 'the burst fields give way')
  await page.getByTestId('rate-per-sec').fill('60')
  await page.getByTestId('rate-seconds').fill('2')
  t.equal(await runAndWait(page, ['done', 'failed']), 'done')
  for (const door of ['ws', 'mqtt']) {
    t.match(await page.getByTestId(`burst-row-${door}`).textContent(), /120120/, `${door}: 60/s for 2 s, all back`)
  }
  t.equal(await page.getByTestId('timeline').getAttribute('data-samples'), '240', 'every message of both doors on the timeline')
  t.equal(await page.getByTestId('chart').getAttribute('data-samples'), '240', 'and in the distribution')

  await page.getByTestId('bench-source').getByText(/docs\/bench-latest\.json/).waitFor()
  for (const door of ['ws', 'mqtt-ws', 'mqtt']) {
    t.match(await page.getByTestId(`bench-${door}-fanout`).textContent(), /^[\d,]+ \(p99 [\d.]+ ms\)$/, `${door}: Node clients' throughput`)
    t.match(await page.getByTestId(`bench-${door}-p99`).textContent(), /^[\d.]+ ms/, `${door}: Node clients' p99`)
  }
  t.match(await page.getByTestId('bench-why').textContent(), /browser/, 'one sentence on why a browser sees more')
  await screenshot(page, 'compare-rate')
  t.same(problems, [], 'no console errors, page errors or dialogs')
})

t.test('the bounds are in the form, and Stop ends a long run', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const { page, problems } = await openPage(t, [], 'e2e-stop')
  t.equal(await page.getByTestId('burst-n').getAttribute('max'), '10000')
  t.equal(await page.getByTestId('burst-window').getAttribute('max'), '100')
  t.equal(await page.getByTestId('rate-per-sec').getAttribute('max'), '5000')
  t.equal(await page.getByTestId('rate-seconds').getAttribute('max'), '60')
  await page.getByTestId('burst-n').fill('10000')
  const run = Number(await page.getByTestId('burst-status').getAttribute('data-run')) + 1
  await page.getByTestId('burst-run').click()
  await page.locator(`[data-testid="burst-status"][data-run="${run}"][data-state="running"]`).waitFor()
  await page.locator('#burst-progress[max="20000"]').waitFor({ state: 'attached' })
  t.pass('10,000 per door')
  await page.getByTestId('burst-stop').click()
  await page.locator(`[data-testid="burst-status"][data-run="${run}"]:is([data-state="done"], [data-state="failed"])`).waitFor({ timeout: 20_000 })
  t.match(await page.getByTestId('burst-status').textContent(), /^Stopped/)
  const sent = Number((await page.getByTestId('burst-row-ws').locator('td').first().textContent()))
  t.ok(sent > 0 && sent < 10_000, `the run stopped part way (${sent} sent)`)
  t.equal(await page.getByTestId('burst-row-mqtt').count(), 0, 'and the next door never started')
  t.ok(await page.getByTestId('burst-run').isEnabled(), 'a new run can start')
  t.same(problems, [], 'no console errors, page errors or dialogs')
})
