// The gateway's own share of a message's trip, per door, through /api/stats and /metrics,
// against a real gateway with a /ws client and MQTT clients over /mqtt and TCP in one room.
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { startGateway, openHub, openMqtt, nextMqttMessage } from '../helpers/gateway.js'

interface DoorFigures { count: number, sumMs: number, counts: number[] }
interface Latency { unit: string, measures: string, buckets: number[], doors: Record<string, DoorFigures> }

async function latencyOf (http: string): Promise<Latency> {
  const res = await fetch(`${http}/api/stats`)
  const body = await res.json() as { latency: Latency }
  return body.latency
}

t.test('each door times its messages from read to last write, shorter than the client sees', async (t) => {
  const { urls } = await startGateway(t)
  const room = 'latency'
  const topic = `chat/${room}`
  const hub = await openHub(t, urls.ws, { room, name: 'hub', presence: 'off' })
  await hub.waitJson('history')
  const overWs = await openMqtt(t, urls['mqtt-ws'], { protocolVersion: 4 })
  await overWs.subscribeAsync(topic, { qos: 0 })
  const overTcp = await openMqtt(t, urls.mqtt, { protocolVersion: 4 })
  await overTcp.subscribeAsync(topic, { qos: 0 })

  const before = await latencyOf(urls.http)
  t.equal(before.unit, 'ms')
  t.match(before.measures, /last live copy/)
  t.equal(before.doors.ws!.counts.length, before.buckets.length + 1, 'one count per bucket, then +Inf')

  const n = 20
  let clientMs = 0
  for (let i = 0; i < n; i++) {
    const text = `timed ${i}`
    const t0 = performance.now()
    hub.send({ type: 'chat', text })
    // The last subscriber to get it decides when the gateway is done: wait for all three.
    await Promise.all([
      hub.waitMessage(topic, (f) => f.payload === text),
      nextMqttMessage(overWs, (_t, p) => p.toString().includes(`"${text}"`)),
      nextMqttMessage(overTcp, (_t, p) => p.toString().includes(`"${text}"`))
    ])
    clientMs += performance.now() - t0
  }
  for (let i = 0; i < n; i++) {
    const text = `mqtt ${i}`
    const t0 = performance.now()
    const got = Promise.all([
      hub.waitMessage(topic, (f) => f.payload === text),
      nextMqttMessage(overWs, (_t, p) => p.toString() === text),
      nextMqttMessage(overTcp, (_t, p) => p.toString() === text)
    ])
    overWs.publish(topic, text, { qos: 0 })
    await got
    clientMs += performance.now() - t0
  }
  overTcp.publish(topic, 'over tcp', { qos: 0 })
  await nextMqttMessage(overWs, (_t, p) => p.toString() === 'over tcp')
  const viaHttp = nextMqttMessage(overWs, (_t, p) => p.toString().includes('"over http"'))
  const posted = await fetch(`${urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, payload: 'over http' }) })
  t.equal(posted.status, 200)
  await viaHttp

  const after = await latencyOf(urls.http)
  const ws = after.doors.ws!
  const mq = after.doors['mqtt-ws']!
  t.equal(ws.count - before.doors.ws!.count, n, `${n} messages read by /ws timed`)
  t.equal(mq.count - before.doors['mqtt-ws']!.count, n, `${n} messages read by /mqtt timed`)
  t.equal(after.doors.mqtt!.count - before.doors.mqtt!.count, 1, 'MQTT/TCP has its own series')
  t.equal(after.doors.http!.count - before.doors.http!.count, 1, 'and HTTP publishes')
  t.ok(ws.sumMs > 0 && mq.sumMs > 0, `both took time: /ws ${ws.sumMs} ms, /mqtt ${mq.sumMs} ms in all`)
  t.ok(ws.sumMs + mq.sumMs < clientMs, `the gateway's share (${(ws.sumMs + mq.sumMs).toFixed(2)} ms) is part of what the clients saw (${clientMs.toFixed(2)} ms)`)
  for (const d of [ws, mq]) {
    for (let i = 1; i < d.counts.length; i++) if (d.counts[i]! < d.counts[i - 1]!) t.fail('bucket counts are cumulative')
    t.equal(d.counts.at(-1), d.count, '+Inf counts every message')
  }

  const metrics = await (await fetch(`${urls.http}/metrics`)).text()
  t.match(metrics, /^# TYPE fusion_door_latency_seconds histogram$/m, 'the histogram in /metrics')
  t.match(metrics, new RegExp(`^fusion_door_latency_seconds_count\\{door="ws"\\} ${ws.count}$`, 'm'), 'the same count as /api/stats')
  t.match(metrics, /^fusion_messages_in_total\{door="ws"\} \d+$/m, 'the hand-written counters are still there')
})

t.test('/api/stats says the message rate a client may send at', async (t) => {
  const { urls } = await startGateway(t, { msgRate: 250 })
  const body = await (await fetch(`${urls.http}/api/stats`)).json() as { limits: { msgRate: number, msgBurst: number } }
  t.same(body.limits, { msgRate: 250, msgBurst: 500 })
})
