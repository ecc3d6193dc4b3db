// Granted QoS (src/engine/overlap-qos.ts, internals: granted-qos, granted-qos-queue),
// packet by packet over in-memory streams. Each case also runs on stock Aedes, where it
// must come out wrong (moscajs/aedes#1074): that is what proves the test can fail.
import t, { type Test } from 'tap'
import { Aedes } from 'aedes'
import { deliverAtGrantedQos, offlineCopies, queueAtGrantedQos, trackSubscriptionChanges } from '../../../src/engine/overlap-qos.js'
import { createEmbeddedPersistence } from '../../../src/engine/internals/index.js'
import { brokerPublish, closeAtTeardown, packetClient, type T } from '../../helpers/mqtt-packets.js'

async function broker (t: T, patched: boolean): Promise<Aedes> {
  const persistence = createEmbeddedPersistence(undefined)
  if (patched) queueAtGrantedQos(persistence)
  const b = await Aedes.createBroker({
    persistence,
    preConnect (client, _packet, done) {
      if (patched) deliverAtGrantedQos(client)
      done(null, true)
    }
  })
  if (patched) trackSubscriptionChanges(b)
  return closeAtTeardown(t, b)
}

/** Subscribes a fresh client, publishes once through the broker, and returns the copies it received. */
async function deliveredCopies (t: T, patched: boolean, subs: Array<{ topic: string, qos: 0 | 1 | 2 }>, publish: { topic: string, qos: 0 | 1 | 2 }): Promise<Array<{ qos: number }>> {
  const b = await broker(t, patched)
  const sub = packetClient(t, b)
  await sub.connect('sub')
  await sub.subscribe(subs)
  await brokerPublish(b, { ...publish, payload: 'x' })
  // Every copy was written before the publish callback; the PINGRESP comes after them.
  await sub.ping()
  return sub.publishes(publish.topic).map((p) => ({ qos: p.qos }))
}

const CASES: Array<{ name: string, subs: Array<{ topic: string, qos: 0 | 1 | 2 }>, publish: { topic: string, qos: 0 | 1 | 2 }, want: Array<{ qos: number }> }> = [
  { name: 'QoS 2 through a QoS 1 wildcard arrives at QoS 1', subs: [{ topic: 'a/+', qos: 1 }], publish: { topic: 'a/b', qos: 2 }, want: [{ qos: 1 }] },
  { name: 'overlapping `a/+` QoS 2 and exact `a/b` QoS 0: one copy at QoS 2 [MQTT-3.3.5-1]', subs: [{ topic: 'a/+', qos: 2 }, { topic: 'a/b', qos: 0 }], publish: { topic: 'a/b', qos: 2 }, want: [{ qos: 2 }] }
]

for (const c of CASES) {
  t.test(c.name, async (t) => {
    t.same(await deliveredCopies(t, true, c.subs, c.publish), c.want, 'with the patch')
    t.notSame(await deliveredCopies(t, false, c.subs, c.publish), c.want, 'stock Aedes gets it wrong (the test can fail)')
  })
}

/** A retained QoS 1 message, then a client subscribing `a/#` at QoS 0: the copy it is sent on SUBSCRIBE. */
async function retainedCopy (t: T, patched: boolean): Promise<Array<{ qos: number, retain: boolean }>> {
  const b = await broker(t, patched)
  await brokerPublish(b, { topic: 'a/b', qos: 1, retain: true, payload: 'kept' })
  const sub = packetClient(t, b)
  await sub.connect('sub')
  await sub.subscribe([{ topic: 'a/#', qos: 0 }])
  await sub.waitFor((p) => p.cmd === 'publish', 'the retained PUBLISH')
  await sub.ping()
  return sub.publishes('a/b').map((p) => ({ qos: p.qos, retain: p.retain }))
}

t.test('a retained QoS 1 message through a QoS 0 `#` arrives at QoS 0', async (t) => {
  t.same(await retainedCopy(t, true), [{ qos: 0, retain: true }], 'with the patch')
  t.notSame(await retainedCopy(t, false), [{ qos: 0, retain: true }], 'stock Aedes sends it at QoS 1 (the test can fail)')
})

t.test('a client with exact subscriptions only is left to Aedes', async (t) => {
  t.same(await deliveredCopies(t, true, [{ topic: 'a/b', qos: 1 }], { topic: 'a/b', qos: 2 }), [{ qos: 1 }])
  t.same(await deliveredCopies(t, true, [{ topic: 'a/b', qos: 2 }], { topic: 'a/b', qos: 0 }), [{ qos: 0 }])
})

t.test('a subscription made after others is seen at once (the filter cache is cleared)', async (t) => {
  const b = await broker(t, true)
  const sub = packetClient(t, b)
  await sub.connect('sub')
  await sub.subscribe([{ topic: 'a/+', qos: 1 }])
  await brokerPublish(b, { topic: 'a/b', qos: 2, payload: '1' })
  await sub.subscribe([{ topic: 'a/#', qos: 2 }])
  await brokerPublish(b, { topic: 'a/b', qos: 2, payload: '2' })
  await sub.ping()
  t.same(sub.publishes('a/b').map((p) => [String(p.payload), p.qos]), [['1', 1], ['2', 2]])
})

/**
 * What a persistent session with `subs` has queued after one publish while it was away
 * (read from the store, which is exact), and the first copy it is sent when it returns.
 */
async function queuedCopies (t: Test, patched: boolean, subs: Array<{ topic: string, qos: 0 | 1 | 2 }>, qos: 0 | 1 | 2): Promise<{ queued: number[], first: number }> {
  const persistence = createEmbeddedPersistence(undefined) as { outgoingStream (client: { id: string }): AsyncIterable<{ qos: number }> }
  if (patched) queueAtGrantedQos(persistence)
  const b = closeAtTeardown(t, await Aedes.createBroker({ persistence, preConnect (client, _p, done) { if (patched) deliverAtGrantedQos(client); done(null, true) } }))
  const first = packetClient(t, b)
  await first.connect('keeper', { clean: false })
  await first.subscribe(subs)
  await first.disconnect()
  await brokerPublish(b, { topic: 'a/b', qos, payload: 'q' })
  const queued: number[] = []
  for await (const p of persistence.outgoingStream({ id: 'keeper' })) queued.push(p.qos)
  const again = packetClient(t, b)
  const connack = await again.connect('keeper', { clean: false })
  t.equal(connack.sessionPresent, true, 'the session was kept')
  const { packet } = await again.waitFor((p) => p.cmd === 'publish', 'the queued PUBLISH')
  return { queued, first: packet.qos }
}

t.test('an offline session queues one copy at the granted QoS (memory persistence)', async (t) => {
  const subs: Array<{ topic: string, qos: 0 | 1 | 2 }> = [{ topic: 'a/+', qos: 1 }, { topic: 'a/#', qos: 1 }]
  const want = { queued: [1], first: 1 }
  t.same(await queuedCopies(t, true, subs, 2), want, 'with the patch: one copy, at QoS 1')
  const stock = await queuedCopies(t, false, subs, 2)
  t.same(stock, { queued: [2], first: 2 }, 'stock: queued and replayed at the published QoS 2 (the test can fail)')
})

t.test('offlineCopies: one copy per session at min(published, highest granted); QoS 0 is not queued', async (t) => {
  const copies = offlineCopies([{ clientId: 'a', qos: 1 }, { clientId: 'a', qos: 2 }, { clientId: 'b', qos: 1 }, { clientId: 'c', qos: 0 }], { qos: 2, topic: 't' })
  t.same(copies.map(([subs, p]) => [subs.map((s) => s.clientId), p.qos]), [[['a'], 2], [['b'], 1]])
  t.same(offlineCopies([{ clientId: 'a', qos: 2 }], { qos: 0 }), [], 'a QoS 0 publish queues nothing')
})
