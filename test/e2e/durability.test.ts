// Nothing lost: what the gateway acknowledged survives kill -9 (issue 4).
import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import { startCli, type RunningCli } from '../helpers/cli.js'
import { openHub, openMqtt, type HubFrame } from '../helpers/gateway.js'

async function restart (t: Test, first: RunningCli, args: string[] = []): Promise<RunningCli> {
  const killed = await first.stop('SIGKILL')
  t.equal(killed.signal, 'SIGKILL', 'the gateway was killed with SIGKILL')
  return startCli(t, args, { keepDataDir: first.dataDir })
}

// FUSION_TEST_STOCK_PUBACK=1 runs this against stock Aedes ordering, to measure what it loses.
const stock = process.env.FUSION_TEST_STOCK_PUBACK === '1' ? ['--hold-puback', 'false'] : []

t.test('300 acked QoS 1 messages for an offline persistent session survive SIGKILL', async (t) => {
  const gw = await startCli(t, stock)
  const clientId = `dur-sub-${process.pid}`
  const sub = await openMqtt(t, gw.urls.mqtt, { clientId, clean: false })
  await sub.subscribeAsync('dur/#', { qos: 1 })
  await sub.endAsync()

  const pub = await openMqtt(t, gw.urls.mqtt, { clientId: `dur-pub-${process.pid}` })
  const N = 300
  // Pipelined: many PUBLISHes in flight at once, as a device flushing its queue would.
  await Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync(`dur/${i % 10}`, String(i), { qos: 1 })))
  pub.end(true)
  const gw2 = await restart(t, gw, stock)

  const seen = new Map<number, number>()
  const again = mqtt.connect(gw2.urls.mqtt, { clientId, clean: false, reconnectPeriod: 0 })
  t.teardown(() => again.end(true))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => resolve(), 15_000)
    again.on('message', (_topic, payload) => {
      const n = Number(payload.toString())
      seen.set(n, (seen.get(n) ?? 0) + 1)
      if (seen.size === N) { clearTimeout(timer); resolve() }
    })
    again.once('error', reject)
  })
  const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !seen.has(i))
  const duplicates = [...seen.values()].reduce((a, n) => a + n - 1, 0)
  t.comment(`received ${seen.size}/${N} distinct, ${duplicates} duplicates (allowed at QoS 1)`)
  t.same(missing, [], 'every acknowledged message reached the persistent session')
})

t.test('20 chat messages acked over /ws are in the history after SIGKILL, in order, same ts', async (t) => {
  const gw = await startCli(t)
  const room = `dur-${process.pid}`
  const c = await openHub(t, gw.urls.ws, { name: 'dora', room })
  await c.waitJson('history')
  for (let i = 0; i < 20; i++) {
    const a = await c.request({ type: 'chat', text: `m${i}` })
    t.equal(a.type, 'ack', `m${i} acked`)
  }
  const live = c.json('message').filter((m) => m.topic === `chat/${room}`)
  const gw2 = await restart(t, gw)
  const late = await openHub(t, gw2.urls.ws, { name: 'late', room })
  const h = await late.waitJson('history')
  const got = (h.messages as HubFrame[]).map((m) => m.payload)
  t.same(got, Array.from({ length: 20 }, (_, i) => `m${i}`), 'all 20, oldest first')
  t.same((h.messages as HubFrame[]).map((m) => m.ts), live.map((m) => m.ts), 'with the ts the live frames had')
})

t.test('a retained message survives SIGKILL', async (t) => {
  const gw = await startCli(t)
  const pub = await openMqtt(t, gw.urls.mqtt)
  await pub.publishAsync('dur/lamp/state', 'on', { qos: 1, retain: true })
  pub.end(true)
  const gw2 = await restart(t, gw)
  const c = await openHub(t, gw2.urls.ws, { name: 'r' })
  await c.subscribe('dur/+/state')
  const m = await c.waitMessage('dur/lamp/state')
  t.equal(m.payload, 'on')
  t.equal(m.retain, true)
})

t.test('a device\'s will is published after the gateway it was connected to is killed and restarted', async (t) => {
  const gw = await startCli(t)
  await openMqtt(t, gw.urls.mqtt, { clientId: 'dur-dev', will: { topic: 'dur/dev/status', payload: Buffer.from('lost'), qos: 1, retain: true } })
  const gw2 = await restart(t, gw)
  const started = Date.now()
  const c = await openHub(t, gw2.urls.ws, { name: 'w' })
  await c.subscribe('dur/dev/status')
  // The will was stored by the killed run; the new run publishes the wills of a broker it
  // does not hear from at its first check (every 20 s: four 5 s heartbeats).
  const m = await c.waitJson('message', (f) => f.topic === 'dur/dev/status', 40_000)
  t.equal(m.payload, 'lost', 'the will arrives')
  t.comment(`will published ${((Date.now() - started) / 1000).toFixed(1)} s after the restart`)
})

t.test('since replay: a client that was away gets exactly what it missed', async (t) => {
  const gw = await startCli(t, ['--memory'])
  const room = `since-${process.pid}`
  const a = await openHub(t, gw.urls.ws, { name: 'away', room })
  await a.waitJson('history')
  await a.request({ type: 'chat', text: 'before' })
  const before = await a.waitMessage(`chat/${room}`, (m) => m.payload === 'before')
  t.type(before.seq, 'number', 'chat messages carry seq')
  await a.close()
  const b = await openHub(t, gw.urls.ws, { name: 'here', room })
  await b.waitJson('history')
  for (let i = 0; i < 10; i++) await b.request({ type: 'chat', text: `missed ${i}` })
  const back = await openHub(t, gw.urls.ws, { name: 'away', room, since: String(before.seq) })
  const h = await back.waitJson('history')
  t.same((h.messages as HubFrame[]).map((m) => m.payload), Array.from({ length: 10 }, (_, i) => `missed ${i}`), 'exactly the 10 missed, in order')
  // the same through a subscribe frame
  const sub = await openHub(t, gw.urls.ws, { name: 'sub', room: 'elsewhere' })
  await sub.waitJson('history')
  await sub.request({ type: 'subscribe', topic: `chat/${room}`, since: before.seq + 5 })
  await sub.waitMessage(`chat/${room}`, (m) => m.payload === 'missed 9')
  t.same(sub.json('message').filter((m) => m.topic === `chat/${room}`).map((m) => m.payload), [5, 6, 7, 8, 9].map((i) => `missed ${i}`))
  // and over HTTP
  const res = await fetch(`${gw.urls.http}/api/history?topic=${encodeURIComponent(`chat/${room}`)}&since=${before.seq + 8}`)
  const body = await res.json() as { messages: HubFrame[] }
  t.same(body.messages.map((m) => m.payload), ['missed 8', 'missed 9'])
})
