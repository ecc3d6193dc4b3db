// The chat page survives any value in a frame (issue 13 item 5): the gateway stamps
// `ts` itself now, but the page must not trust the wire either. The page's /ws is
// answered by a scripted server (Playwright's routeWebSocket) sending frames no gateway
// sends: a ts of 1e20, NaN-ish values, objects where strings belong.
import t from 'tap'
import { startCli } from '../helpers/cli.js'
import { launchBrowser, requirePrograms, expectOneMessage } from '../helpers/browser.js'

t.test('the chat page renders hostile frames without an error and keeps working', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const gw = await startCli(t, ['--memory'])
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.routeWebSocket(/\/ws/, (ws) => {
    ws.send(JSON.stringify({ type: 'welcome', clientId: 'ws-00000001', name: 'me', room: 'lobby', server: 'x', format: 'json' }))
    ws.send(JSON.stringify({
      type: 'history',
      topic: 'chat/lobby',
      messages: [
        { seq: 1, topic: 'chat/lobby', payload: 'far future', from: 'mallory', via: 'mqtt', ts: 1e20 },
        { seq: 2, topic: 'chat/lobby', payload: 'odd fields', from: { x: 1 }, via: 42, ts: Date.now() - 1000 },
        { seq: 6, topic: 'chat/lobby', payload: 'no time', from: 'x', via: 'ws', ts: 'yesterday' },
        { seq: 3, topic: 'chat/lobby', payload: null, from: null, via: null, ts: -1e300 }
      ]
    }))
    ws.send(JSON.stringify({ type: 'message', topic: 'chat/lobby', payload: 'live but odd', from: 'eve', via: 'ws', ts: Number.MAX_VALUE, qos: 0, retain: false, seq: 4 }))
    ws.send(JSON.stringify({ type: 'presence', clientId: 42, name: { a: 1 }, status: 'online', via: 'mqtt', ts: 1e20 }))
    ws.send(JSON.stringify({ type: 'message', topic: 'chat/lobby', payload: 'after the odd ones', from: 'bob', via: 'ws', ts: Date.now(), qos: 0, retain: false, seq: 5 }))
  })
  await page.goto(gw.urls.http)
  await expectOneMessage(page, 'far future')
  await expectOneMessage(page, 'odd fields')
  await expectOneMessage(page, 'live but odd')
  await expectOneMessage(page, 'after the odd ones')
  t.equal(await page.getByText('no time', { exact: true }).count(), 0, 'a message without a numeric ts is left out')
  const errors = browser.problems.filter((p) => p.startsWith('pageerror'))
  t.same(errors, [], 'no uncaught error in the page')
})
