// The comparison page in real Chromium: both panes connect, a burst runs through
// each door, and the page shows measured figures and draws the chart.
import t from 'tap'
import { startCli } from '../helpers/cli.js'
import { launchBrowser, requirePrograms, screenshot, waitForState } from '../helpers/browser.js'
import type { Page } from 'playwright-core'

/** The raw number behind a figure (the page keeps it in data-value). */
async function figure (page: Page, testId: string): Promise<number> {
  const raw = await page.getByTestId(testId).getAttribute('data-value')
  return raw === null || raw === '' ? NaN : Number(raw)
}

t.test('the comparison page: both doors, a burst, figures and a chart', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const gw = await startCli(t, ['--memory'])
  const browser = await launchBrowser(t, { viewport: { width: 1280, height: 1000 } })
  const page = await browser.newPage()
  await page.goto(`${gw.urls.http}/compare.html?room=e2e-compare`)
  await Promise.all([waitForState(page, 'ws-status', 'online'), waitForState(page, 'mqtt-status', 'online')])
  t.pass('both panes connected')
  t.equal(await page.locator('#room-name').textContent(), 'e2e-compare', 'the room from the URL')

  // One message by hand through each door: each pane shows what it receives.
  await page.getByTestId('ws-input').fill('hand-typed through ws')
  await page.getByTestId('ws-input').press('Enter')
  await page.getByTestId('mqtt-input').fill('hand-typed through mqtt')
  await page.getByTestId('mqtt-input').press('Enter')
  for (const door of ['ws', 'mqtt']) {
    for (const text of ['hand-typed through ws', 'hand-typed through mqtt']) {
      await page.getByTestId(`${door}-feed`).getByText(text, { exact: true }).waitFor()
    }
  }
  t.pass('each pane received the message sent through the other door')

  const n = 50
  await page.getByTestId('burst-n').fill(String(n))
  await page.getByTestId('burst-run').click()
  await waitForState(page, 'burst-status', 'done', 60_000)
  t.pass(`a burst of ${n} per door came back whole`)

  for (const door of ['ws', 'mqtt']) {
    const p50 = await figure(page, `${door}-p50`)
    const p95 = await figure(page, `${door}-p95`)
    const up = await figure(page, `${door}-up`)
    const down = await figure(page, `${door}-down`)
    const rate = await figure(page, `${door}-burst-rate`)
    t.ok(p50 > 0, `${door}: p50 ${p50.toFixed(2)} ms`)
    t.ok(p95 >= p50, `${door}: p95 ${p95.toFixed(2)} ms is not below p50`)
    t.ok(up > 0, `${door}: ${up.toFixed(1)} B per message up`)
    t.ok(down > 0, `${door}: ${down.toFixed(1)} B per message down`)
    t.ok(rate > 0, `${door}: ${Math.round(rate)} msg/s in the burst`)
    // Every burst text is longer than a byte of overhead: the wire carries more than the text.
    t.ok(up > 'burst ws 1/50 abcdef'.length, `${door}: the up figure counts headers as well as text`)
    const row = page.getByTestId(`burst-row-${door}`)
    t.match(await row.textContent(), new RegExp(`${n}${n}`), `${door}: ${n} sent, ${n} echoed in the results table`)
  }

  // The chart: both series drawn, checked on the canvas pixels themselves.
  const pixels = await page.getByTestId('chart').evaluate((canvas: any) => {
    const root = (globalThis as any).getComputedStyle((globalThis as any).document.documentElement)
    const parse = (hex: string): number[] => {
      const h = hex.trim().replace('#', '')
      return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16))
    }
    const ws = parse(root.getPropertyValue('--ws-color'))
    const mq = parse(root.getPropertyValue('--mqtt-color'))
    const data: Uint8ClampedArray = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data
    let painted = 0
    let wsPixels = 0
    let mqttPixels = 0
    const near = (c: number[], r: number, g: number, b: number): boolean => Math.abs(c[0]! - r) + Math.abs(c[1]! - g) + Math.abs(c[2]! - b) < 60
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!]
      if (a === 0) continue
      painted++
      if (a > 200 && near(ws, r, g, b)) wsPixels++
      if (a > 200 && near(mq, r, g, b)) mqttPixels++
    }
    return { painted, wsPixels, mqttPixels, samples: canvas.dataset.samples }
  })
  t.equal(pixels.samples, String(2 * n), 'the chart plots every echoed message of both doors')
  t.ok(pixels.wsPixels > 50, `the WebSocket series is drawn (${pixels.wsPixels} px)`)
  t.ok(pixels.mqttPixels > 50, `the MQTT series is drawn (${pixels.mqttPixels} px)`)

  // The table of differences carries the measured figures.
  const differ = await page.getByTestId('differ').textContent() ?? ''
  t.match(differ, /\d+ B up, \d+ B down/, 'bytes per message measured in the table')
  t.match(differ, /p50 [\d.]+ ms, p95 [\d.]+ ms/, 'latency measured in the table')
  t.ok(await page.locator('[data-testid^="differ-row-"]').count() >= 8, 'topics, QoS, retained, will, overhead, reconnect and more')

  // Server counters from /api/stats beside the page's own figures.
  await page.getByTestId('server-row-ws').waitFor()
  const wsIn = await page.getByTestId('server-ws-bytes-in').textContent()
  const mqttIn = await page.getByTestId('server-mqtt-ws-bytes-in').textContent()
  t.notMatch(wsIn, /^(0 B|–)$/, `the server counted bytes in on /ws (${wsIn})`)
  t.notMatch(mqttIn, /^(0 B|–)$/, `the server counted bytes in on /mqtt (${mqttIn})`)

  await screenshot(page, 'compare-desktop')
  t.same(browser.problems, [], 'no console errors, page errors or dialogs')
})

t.test('the comparison page on a phone-sized screen', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const gw = await startCli(t, ['--memory'])
  const phone = await launchBrowser(t, { viewport: { width: 390, height: 800 } })
  const page = await phone.newPage()
  await page.goto(`${gw.urls.http}/compare.html?room=e2e-phone`)
  await Promise.all([waitForState(page, 'ws-status', 'online'), waitForState(page, 'mqtt-status', 'online')])
  const overflow = await page.evaluate(() => {
    const d = (globalThis as any).document.documentElement
    return d.scrollWidth - d.clientWidth
  })
  t.ok(overflow <= 0, `nothing sticks out sideways (overflow ${overflow}px)`)
  await screenshot(page, 'compare-phone')
  t.same(phone.problems, [], 'no console errors')
})
