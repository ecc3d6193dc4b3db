// MQTT presence (src/engine/mqtt-presence.ts, internals: client-will, clean-disconnect),
// packet by packet over in-memory streams: who is announced online and offline, and when
// a device's own will speaks for it instead.
import t from 'tap'
import { Aedes } from 'aedes'
import { watchMqttPresence } from '../../../src/engine/mqtt-presence.js'
import { disconnectedCleanly, willTopic } from '../../../src/engine/internals/index.js'
import type { PresenceTracker } from '../../../src/engine/presence.js'
import { closeAtTeardown, packetClient, type T } from '../../helpers/mqtt-packets.js'

interface Said { id: string, status: string }

async function setup (t: T): Promise<{ broker: Aedes, said: Said[], next: (status: string) => Promise<Said> }> {
  const broker = closeAtTeardown(t, await Aedes.createBroker())
  const said: Said[] = []
  const waiters = new Set<() => void>()
  const tracker = {
    announce (id: string, status: string) {
      said.push({ id, status })
      for (const w of [...waiters]) w()
      return Promise.resolve()
    }
  } as unknown as PresenceTracker
  t.teardown(watchMqttPresence(broker, tracker))
    // Resolves with the next announcement of `status` not yet waited for.
  let seen = 0
  const next = async (status: string): Promise<Said> => {
    const find = (): number => said.findIndex((s, i) => i >= seen && s.status === status)
    await new Promise<void>((resolve, reject) => {
      if (find() >= 0) return resolve()
      const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`no ${status} announcement`)) }, 3000)
      const check = (): void => { if (find() >= 0) { clearTimeout(timer); waiters.delete(check); resolve() } }
      waiters.add(check)
    })
    const i = find()
    seen = i + 1
    return said[i] as Said
  }
  return { broker, said, next }
}

/** Waits until Aedes has finished with `c`'s client (clientDisconnect has been emitted). */
function gone (broker: Aedes, id: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (client: { id: string }): void => { if (client.id === id) { broker.removeListener('clientDisconnect', on); setImmediate(resolve) } }
    broker.on('clientDisconnect', on)
  })
}

const presenceWill = (id: string): { topic: string, payload: Buffer, qos: 1, retain: true } => ({ topic: `presence/${id}`, payload: Buffer.from('{"status":"offline"}'), qos: 1, retain: true })

t.test('a client without its own presence will: online, then offline however it leaves', async (t) => {
  const { broker, said, next } = await setup(t)
  const a = packetClient(t, broker)
  await a.connect('dev-a')
  t.same(await next('online'), { id: 'dev-a', status: 'online' })
  const left = gone(broker, 'dev-a')
  a.drop()
  await left
  t.same(await next('offline'), { id: 'dev-a', status: 'offline' }, 'dropped: we say offline')
  t.equal(said.length, 2)
})

t.test('a device whose will is on presence/<id>: its will speaks when it dies, we speak when it says DISCONNECT', async (t) => {
  const { broker, said, next } = await setup(t)
  const dies = packetClient(t, broker)
  await dies.connect('dev-b', { will: presenceWill('dev-b') })
  await next('online')
  t.equal(willTopic(dies.client), 'presence/dev-b', 'Aedes holds the will the client sent')
  let left = gone(broker, 'dev-b')
  dies.drop()
  await left
  t.equal(disconnectedCleanly(dies.client), false, 'dropped: not a clean disconnect')
  t.same(said.filter((s) => s.id === 'dev-b').map((s) => s.status), ['online'], 'no offline from us: the will says it')

  const leaves = packetClient(t, broker)
  await leaves.connect('dev-b', { will: presenceWill('dev-b') })
  await next('online')
  left = gone(broker, 'dev-b')
  await leaves.disconnect()
  await left
  t.equal(disconnectedCleanly(leaves.client), true, 'DISCONNECT: a clean disconnect, the will is discarded')
  t.same(said.filter((s) => s.id === 'dev-b').map((s) => s.status), ['online', 'online', 'offline'], 'we say offline')
})

t.test('a will on another topic does not stop us from saying offline', async (t) => {
  const { broker, said, next } = await setup(t)
  const c = packetClient(t, broker)
  await c.connect('dev-c', { will: { topic: 'alarms/dev-c', payload: Buffer.from('gone'), qos: 0, retain: false } })
  await next('online')
  t.equal(willTopic(c.client), 'alarms/dev-c')
  const left = gone(broker, 'dev-c')
  c.drop()
  await left
  t.same(said.map((s) => s.status), ['online', 'offline'])
})
