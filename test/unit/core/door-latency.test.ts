// The per-door latency histogram: what it times, when it stops, what it ignores.
import t from 'tap'
import { DoorLatency, LATENCY_BUCKETS_MS } from '../../../src/core/door-latency.js'
import { DOORS } from '../../../src/core/stats.js'

const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve))
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function clock (): { now: () => number, set: (ms: number) => void } {
  let ms = 0
  return { now: () => ms, set: (v) => { ms = v } }
}

t.test('synchronous writes: from the read to the last copy written in the fan-out', async (t) => {
  const c = clock()
  const latency = new DoorLatency(DOORS, { now: c.now })
  const stamp = {}
  c.set(100)
  latency.received(stamp, 'ws')
  c.set(100.2)
  latency.delivered(stamp, false)
  c.set(100.35)
  latency.delivered(stamp, false)
  c.set(150) // after the pass: nothing here counts
  await tick()
  const s = await latency.snapshot()
  t.equal(s.doors.ws.count, 1, 'one message timed')
  t.equal(s.doors.ws.sumMs, 0.35, 'to the last write, not the first, not the settle')
  t.equal(s.doors['mqtt-ws'].count, 0, 'on the door that read it only')
  const i = LATENCY_BUCKETS_MS.findIndex((b) => b >= 0.35)
  t.equal(s.doors.ws.counts[i - 1], 0, 'not in the bucket below')
  t.equal(s.doors.ws.counts[i], 1, `in the ${LATENCY_BUCKETS_MS[i]} ms bucket (cumulative from there)`)
  t.equal(s.doors.ws.counts.at(-1), 1, '+Inf holds everything')
  t.equal(s.doors.ws.counts.length, LATENCY_BUCKETS_MS.length + 1)
})

t.test('an MQTT copy is timed when Aedes writes it, in the immediate it queued', async (t) => {
  const c = clock()
  const latency = new DoorLatency(DOORS, { now: c.now })
  const stamp = {}
  const order: string[] = []
  c.set(10)
  latency.received(stamp, 'mqtt-ws')
  latency.delivered(stamp, true)
  // What Aedes does in deliver0 right after authorizeForward returns.
  setImmediate(() => { c.set(12.5); order.push('aedes write') })
  await immediate()
  await immediate()
  t.same(order, ['aedes write'])
  const s = await latency.snapshot()
  t.equal(s.doors['mqtt-ws'].count, 1)
  t.equal(s.doors['mqtt-ws'].sumMs, 2.5, 'stopped after the write, not before it')
})

t.test('each message is observed once; unknown stamps and replays are ignored', async (t) => {
  const latency = new DoorLatency(DOORS)
  const stamp = {}
  latency.delivered({}, false)
  latency.delivered(undefined, true)
  latency.received(stamp, 'mqtt')
  latency.delivered(stamp, false)
  await tick()
  latency.delivered(stamp, false) // a replay of the same packet later: not a second sample
  await tick()
  await immediate()
  const s = await latency.snapshot()
  t.equal(s.doors.mqtt.count, 1)
  t.equal(s.doors.ws.count + s.doors['mqtt-ws'].count + s.doors.http.count, 0)
})

t.test('a message never delivered is never observed and holds nothing once its packet is gone', async (t) => {
  const latency = new DoorLatency(DOORS)
  latency.received({}, 'ws')
  await tick()
  await immediate()
  t.equal((await latency.snapshot()).doors.ws.count, 0)
})

t.test('Prometheus text: one histogram with a door label, every door present from the start', async (t) => {
  const latency = new DoorLatency(DOORS)
  const text = await latency.metrics()
  t.match(text, /^# TYPE fusion_door_latency_seconds histogram$/m)
  for (const door of ['mqtt', 'mqtt-ws', 'ws', 'http']) {
    t.match(text, new RegExp(`^fusion_door_latency_seconds_count\\{door="${door}"\\} 0$`, 'm'), `${door} present`)
  }
  t.match(text, /^fusion_door_latency_seconds_bucket\{le="0.0001",door="ws"\} 0$/m, 'buckets in seconds')
  // Two gateways in one process keep separate histograms.
  const other = new DoorLatency(DOORS)
  const stamp = {}
  other.received(stamp, 'ws')
  other.delivered(stamp, false)
  await tick()
  t.equal((await other.snapshot()).doors.ws.count, 1)
  t.equal((await latency.snapshot()).doors.ws.count, 0)
})
