// Issue 13: event-loop lag (max, p99) in /metrics and /api/stats. A stall of 120 ms in
// this process (the gateway runs in it) shows in the max.
import t from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { getJson } from '../helpers/security.js'

t.test('/metrics and /api/stats report the event-loop lag', async (t) => {
  const { urls } = await startGateway(t)
  const before = await (await fetch(`${urls.http}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
  t.match(before, /^# TYPE fusion_event_loop_lag_max_seconds gauge$/m)
  t.match(before, /^fusion_event_loop_lag_p99_seconds [0-9.e+-]+$/m)
  await new Promise<void>((resolve) => setTimeout(() => {
    const t0 = Date.now()
    while (Date.now() - t0 < 120) { /* hold the loop, as a slow parser would */ }
    resolve()
  }, 50))
  await new Promise((resolve) => setTimeout(resolve, 50)) // let the sampling timer record the stall
  const text = await (await fetch(`${urls.http}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
  const max = Number(/^fusion_event_loop_lag_max_seconds ([0-9.e+-]+)$/m.exec(text)?.[1])
  t.ok(max >= 0.1 && max < 5, `the 120 ms stall shows as max ${max} s`)
  const stats = await getJson(`${urls.http}/api/stats`)
  t.ok(stats.json.eventLoop.maxMs >= 100, `/api/stats eventLoop.maxMs ${stats.json.eventLoop.maxMs}`)
  t.type(stats.json.eventLoop.p99Ms, 'number')
})
