// Reconcile after a reload (src/engine/reconcile.ts, internals: broker-clients,
// client-subscriptions, broker-persistence), packet by packet over in-memory streams.
// Without it (the stock behaviour) a subscription the new rules refuse keeps receiving.
import t from 'tap'
import { Aedes } from 'aedes'
import { reconcileMqttClients } from '../../../src/engine/reconcile.js'
import { clientSubscriptions, createEmbeddedPersistence } from '../../../src/engine/internals/index.js'
import { FusionError } from '../../../src/core/errors.js'
import type { Acl } from '../../../src/core/policy/acl.js'
import { brokerPublish, closeAtTeardown, packetClient, type T } from '../../helpers/mqtt-packets.js'

/** The new rules: nobody may read secret/... any more. */
const noSecrets: Acl = {
  checkPublish () {},
  checkSubscribe (_who, filter) { if (filter.startsWith('secret/')) throw new FusionError('ACL_DENIED', `subscribe to ${filter} is not allowed`) }
}

interface StoredSubs { subscriptionsByClient (client: { id: string }): Promise<Array<{ topic: string }> | null> }

async function setup (t: T): Promise<{ broker: Aedes, persistence: StoredSubs }> {
  const persistence = createEmbeddedPersistence(undefined) as StoredSubs
  const broker = closeAtTeardown(t, await Aedes.createBroker({ persistence }))
  return { broker, persistence }
}

/** Waits (a bounded number of turns of the event loop) until `done()` holds. */
async function until (done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await done()) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error(`still not: ${what}`)
}

/** Reconcile starts Aedes's unsubscribe and does not wait for it: the test does. */
async function unsubscribed (c: ReturnType<typeof packetClient>, filter: string): Promise<void> {
  await until(() => !(filter in clientSubscriptions(c.client)), `${filter} unsubscribed`)
}

/** Topics `c` receives for one publish on each of `topics`. */
async function receives (broker: Aedes, c: ReturnType<typeof packetClient>, topics: string[]): Promise<string[]> {
  const from = c.received.length
  for (const topic of topics) await brokerPublish(broker, { topic, payload: 'x', qos: 0 })
  await c.ping()
  return c.received.slice(from).filter((p) => p.cmd === 'publish').map((p) => p.topic as string)
}

t.test('a subscription the new rules refuse stops receiving; the others stay', async (t) => {
  for (const reconcile of [true, false]) {
    const { broker } = await setup(t)
    const c = packetClient(t, broker)
    await c.connect('reader')
    await c.subscribe([{ topic: 'secret/#', qos: 0 }, { topic: 'news/#', qos: 0 }])
    t.same(await receives(broker, c, ['secret/a', 'news/a']), ['secret/a', 'news/a'], 'both before the reload')
    if (reconcile) {
      t.same(reconcileMqttClients(broker, noSecrets), { closed: 0, revoked: 1 }, 'one subscription revoked')
      await unsubscribed(c, 'secret/#')
      t.same(await receives(broker, c, ['secret/b', 'news/b']), ['news/b'], 'reconciled: only what the rules allow')
      t.equal(c.closed, false, 'the connection stays (MQTT 3.1.1 cannot tell the client)')
    } else {
      t.same(await receives(broker, c, ['secret/b', 'news/b']), ['secret/b', 'news/b'], 'stock: the refused subscription still receives (the test can fail)')
    }
  }
})

t.test("a persistent session's stored subscriptions are removed too", async (t) => {
  const { broker, persistence } = await setup(t)
  const c = packetClient(t, broker)
  await c.connect('keeper', { clean: false })
  await c.subscribe([{ topic: 'secret/x', qos: 1 }, { topic: 'news/x', qos: 1 }])
  t.same(reconcileMqttClients(broker, noSecrets), { closed: 0, revoked: 1 })
  await unsubscribed(c, 'secret/x')
  let stored: string[] = []
  await until(async () => {
    stored = ((await persistence.subscriptionsByClient({ id: 'keeper' })) ?? []).map((s) => s.topic).sort()
    return !stored.includes('secret/x')
  }, 'secret/x gone from the store')
  t.same(stored, ['news/x'], 'the refused filter is gone from the store')
  await c.disconnect()
  const again = packetClient(t, broker)
  await again.connect('keeper', { clean: false })
  t.same(await receives(broker, again, ['secret/x', 'news/x']), ['news/x'], 'and does not come back with the session')
})

t.test('reconcile sees every connected client', async (t) => {
  const { broker } = await setup(t)
  const clients = [packetClient(t, broker), packetClient(t, broker), packetClient(t, broker)]
  for (const [i, c] of clients.entries()) {
    await c.connect(`c${i}`)
    await c.subscribe([{ topic: 'secret/+', qos: 0 }])
  }
  t.same(reconcileMqttClients(broker, noSecrets), { closed: 0, revoked: 3 })
  for (const c of clients) await unsubscribed(c, 'secret/+')
  t.same(reconcileMqttClients(broker, noSecrets), { closed: 0, revoked: 0 }, 'nothing left to revoke')
})
