// Does /compare.html measure the doors, or itself? In one Chromium against one gateway,
// the same burst runs through the page and through a bare harness (native WebSocket and
// MQTT.js, timed first thing in the message callback, nothing rendered). Three rounds,
// medians: the page's p50 per door must be within 1.25x + 1 ms of the bare one, in one of
// at most three measurements (two shared cores make a single one noisy).
import t from 'tap'
import { startCli } from '../helpers/cli.js'
import { launchBrowser, requirePrograms, waitForState } from '../helpers/browser.js'
import type { Page } from 'playwright-core'

const N = 200
const IN_FLIGHT = 10
const ROUNDS = 3
/** Measurements taken while one is over the bound (see the test). */
const ATTEMPTS = 3
/** The bound of the issue: page p50 <= FACTOR x bare p50 + SLACK_MS, per door. */
const FACTOR = 1.25
const SLACK_MS = 1

interface BareResult { ws: number[], mqtt: number[] }

/**
 * The bare harness, run inside a page of the gateway's origin: the same room layout as the
 * comparison page (one /ws client and one MQTT.js client in one room, each receiving the
 * other's messages), the same texts, the same window of messages in flight.
 */
async function bareBurst (page: Page, room: string, n: number, inFlight: number): Promise<BareResult> {
  return await page.evaluate(async ({ room, n, inFlight }) => {
    const g = globalThis as any
    const state = g.__bare ??= {}
    if (!state.ready) {
      const mqtt = (await import('/vendor/mqtt/mqtt.esm.js' as string)).default
      const ws = new g.WebSocket(`ws://${g.location.host}/ws?room=${room}&name=bare-ws&presence=off`)
      await new Promise<void>((resolve, reject) => {
        ws.onerror = () => reject(new Error('bare /ws failed'))
        ws.onmessage = (ev: any) => { if (JSON.parse(ev.data).type === 'history') resolve() }
      })
      const client = await mqtt.connectAsync(`ws://${g.location.host}/mqtt`, {
        clientId: `bare-${Math.random().toString(16).slice(2, 10)}`, protocolVersion: 4, clean: true, timerVariant: 'native', reconnectPeriod: 0
      })
      await client.subscribeAsync(`chat/${room}`, { qos: 0 })
      state.ws = ws
      state.client = client
      state.onWs = undefined
      state.onMqtt = undefined
      // Timed first, then only what identifies the message.
      ws.onmessage = (ev: any) => {
        const at = g.performance.now()
        const f = JSON.parse(ev.data)
        if (f.type === 'message') state.onWs?.(f.payload, at)
      }
      client.on('message', (_topic: string, payload: Uint8Array) => {
        const at = g.performance.now()
        state.onMqtt?.(new g.TextDecoder().decode(payload), at)
      })
      state.ready = true
    }
    const run = (door: 'ws' | 'mqtt', tag: string): Promise<number[]> => new Promise((resolve, reject) => {
      const sentAt = new Map<string, number>()
      const rtts: number[] = []
      let next = 0
      const timer = setTimeout(() => reject(new Error(`bare ${door}: ${rtts.length}/${n} back within 20 s`)), 20_000)
      const send = (): void => {
        next++
        const text = `burst ${next}/${n} ${tag}-${door === 'ws' ? 'w' : 'm'}`
        sentAt.set(text, g.performance.now())
        if (door === 'ws') state.ws.send(JSON.stringify({ type: 'chat', text }))
        else state.client.publish(`chat/${room}`, text, { qos: 0, retain: false })
      }
      const back = (text: string, at: number): void => {
        const t0 = sentAt.get(text)
        if (t0 === undefined) return
        sentAt.delete(text)
        rtts.push(at - t0)
        if (rtts.length === n) { clearTimeout(timer); resolve(rtts); return }
        if (next < n) send()
      }
      state.onWs = door === 'ws' ? back : undefined
      state.onMqtt = door === 'mqtt' ? back : undefined
      while (next < Math.min(n, inFlight)) send()
    })
    const tag = Math.random().toString(36).slice(2, 8)
    const ws = await run('ws', tag)
    const mq = await run('mqtt', tag)
    return { ws, mqtt: mq }
  }, { room, n, inFlight })
}

/** The p50 of the page's last burst per door, as its results table shows it. */
async function pageBurst (page: Page, n: number, inFlight: number): Promise<{ ws: number, mqtt: number }> {
  await page.getByTestId('burst-n').fill(String(n))
  await page.getByTestId('burst-window').fill(String(inFlight))
  const run = Number(await page.getByTestId('burst-status').getAttribute('data-run')) + 1
  await page.getByTestId('burst-run').click()
  await page.locator(`[data-testid="burst-status"][data-state="done"][data-run="${run}"]`).waitFor({ state: 'attached', timeout: 60_000 })
  const read = async (door: string): Promise<number> => Number(await page.getByTestId(`burst-${door}-p50`).getAttribute('data-value'))
  return { ws: await read('ws'), mqtt: await read('mqtt') }
}

/** Nearest-rank percentile, as the page computes it (public/js/figures.js). */
function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!
}

const median = (v: number[]): number => percentile(v, 50)

t.test('the comparison page times the doors, not itself', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const gw = await startCli(t, ['--memory'])
  const browser = await launchBrowser(t, { viewport: { width: 1280, height: 1000 } })
  const page = await browser.newPage()
  await page.goto(`${gw.urls.http}/compare.html?room=latency-page`)
  await Promise.all([waitForState(page, 'ws-status', 'online'), waitForState(page, 'mqtt-status', 'online')])
  const bare = await browser.newPage()
  // A document of the gateway's origin with no script of its own: the harness is all that
  // runs. Chromium asks a JSON document's origin for /favicon.ico, which the gateway lacks.
  await bare.route('**/favicon.ico', (route) => route.fulfill({ status: 204 }))
  await bare.goto(`${gw.urls.http}/api/health`)

  // Warm-up (discarded): both sides JIT-compile their paths, the gateway too.
  await bareBurst(bare, 'latency-bare', N, IN_FLIGHT)
  await pageBurst(page, N, IN_FLIGHT)

  // The gateway, Chromium and the test share two cores, so one measurement can land on a
  // burst of background work (seen in CI: bare p50s of 2.9 and 6.8 ms in one measurement,
  // the page over the bound by 0.1 ms). A page that timed itself would be over the bound
  // every time; a measurement is taken again, up to ATTEMPTS times, only while it is over,
  // and every attempt is reported.
  let verdict: Record<'ws' | 'mqtt', { p: number, b: number, bound: number }> | undefined
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    verdict = await measure(attempt)
    if (verdict.ws.p <= verdict.ws.bound && verdict.mqtt.p <= verdict.mqtt.bound) break
  }
  for (const door of ['ws', 'mqtt'] as const) {
    const { p, b, bound } = verdict![door]
    t.ok(p <= bound, `${door}: the page's p50 ${p.toFixed(2)} ms is within ${FACTOR}x + ${SLACK_MS} ms of the bare ${b.toFixed(2)} ms (bound ${bound.toFixed(2)} ms; medians of ${ROUNDS} rounds)`)
  }
  t.same(browser.problems, [], 'no console errors, page errors or dialogs')

  /** Three interleaved rounds; the medians per door and the bound. */
  async function measure (attempt: number): Promise<Record<'ws' | 'mqtt', { p: number, b: number, bound: number }>> {
    const pageP50: Record<'ws' | 'mqtt', number[]> = { ws: [], mqtt: [] }
    const bareP50: Record<'ws' | 'mqtt', number[]> = { ws: [], mqtt: [] }
    for (let round = 0; round < ROUNDS; round++) {
      // A round is bare, page, page, bare (or the mirror image): a drift of the machine's
      // load over the round weighs on both alike. Its figure per side is the mean of the two.
      const order = round % 2 === 0 ? ['bare', 'page', 'page', 'bare'] : ['page', 'bare', 'bare', 'page']
      const got = { page: { ws: [] as number[], mqtt: [] as number[] }, bare: { ws: [] as number[], mqtt: [] as number[] } }
      for (const who of order) {
        if (who === 'bare') {
          const r = await bareBurst(bare, 'latency-bare', N, IN_FLIGHT)
          got.bare.ws.push(percentile(r.ws, 50))
          got.bare.mqtt.push(percentile(r.mqtt, 50))
        } else {
          const r = await pageBurst(page, N, IN_FLIGHT)
          got.page.ws.push(r.ws)
          got.page.mqtt.push(r.mqtt)
        }
      }
      const avg = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length
      for (const door of ['ws', 'mqtt'] as const) {
        pageP50[door].push(avg(got.page[door]))
        bareP50[door].push(avg(got.bare[door]))
      }
      const list = (v: number[]): string => v.map((x) => x.toFixed(2)).join(' & ')
      t.comment(`attempt ${attempt}, round ${round + 1}: page p50 ws ${list(got.page.ws)} ms, mqtt ${list(got.page.mqtt)} ms; bare p50 ws ${list(got.bare.ws)} ms, mqtt ${list(got.bare.mqtt)} ms`)
    }
    const verdictOf = (door: 'ws' | 'mqtt'): { p: number, b: number, bound: number } => {
      const p = median(pageP50[door])
      const b = median(bareP50[door])
      return { p, b, bound: FACTOR * b + SLACK_MS }
    }
    const v = { ws: verdictOf('ws'), mqtt: verdictOf('mqtt') }
    t.comment(`attempt ${attempt}: page ws ${v.ws.p.toFixed(2)} / bound ${v.ws.bound.toFixed(2)} ms, mqtt ${v.mqtt.p.toFixed(2)} / bound ${v.mqtt.bound.toFixed(2)} ms`)
    return v
  }
})
