// The held PUBACK (src/engine/durable-puback.ts, internals: held-puback), packet by packet
// over in-memory streams. Stock Aedes writes the PUBACK before it publishes; with the gate
// it waits for release(). The stock case runs too, with the gate taken out.
import t from 'tap'
import { Aedes, type Client } from 'aedes'
import { PubackGate } from '../../../src/engine/durable-puback.js'
import { ungatePacketWrites } from '../../../src/engine/internals/index.js'
import { closeAtTeardown, packetClient, type PacketClient, type T } from '../../helpers/mqtt-packets.js'

interface Published { client: Client, messageId: number }

/** A broker whose QoS 1 PUBACKs go through `gate` (none: stock), and the `published` hook's calls. */
async function broker (t: T, gate: PubackGate | undefined): Promise<{ broker: Aedes, published: Published[], onPublished: () => Promise<Published> }> {
  const published: Published[] = []
  const waiters: Array<(p: Published) => void> = []
  const b = await Aedes.createBroker({
    authorizePublish (client, packet, done) {
      if (gate && client && packet.qos === 1 && typeof packet.messageId === 'number') gate.expect(client.conn, packet.messageId)
      done(null)
    },
    published (packet, client, done) {
      done(null)
      const messageId = (packet as { messageId?: number }).messageId
      if (!client || packet.qos !== 1 || typeof messageId !== 'number') return
      const p = { client, messageId }
      const waiter = waiters.shift()
      if (waiter) waiter(p)
      else published.push(p)
    }
  })
  closeAtTeardown(t, b)
  const onPublished = (): Promise<Published> => {
    const done = published.shift()
    if (done) return Promise.resolve(done)
    return new Promise((resolve) => waiters.push(resolve))
  }
  return { broker: b, published, onPublished }
}

/** Sends a QoS 1 PUBLISH, waits until Aedes has published it, then a PING round trip: was the PUBACK before the PINGRESP? */
async function pubackBeforePublished (pub: PacketClient, onPublished: () => Promise<Published>, messageId: number): Promise<{ acked: boolean, published: Published }> {
  pub.send({ cmd: 'publish', topic: 't/1', payload: Buffer.from('m'), qos: 1, messageId, retain: false, dup: false })
  const published = await onPublished()
  const pong = await pub.ping()
  const acked = pub.received.slice(0, pong).some((p) => p.cmd === 'puback' && p.messageId === messageId)
  return { acked, published }
}

t.test('stock Aedes: the PUBACK is out before the message is published (the test can fail)', async (t) => {
  ungatePacketWrites()
  const { broker: b, onPublished } = await broker(t, undefined)
  const pub = packetClient(t, b)
  await pub.connect('pub')
  const { acked } = await pubackBeforePublished(pub, onPublished, 7)
  t.equal(acked, true, 'acknowledged before it was stored')
})

t.test('with the gate the PUBACK waits for release(), then goes out', async (t) => {
  const gate = new PubackGate()
  t.teardown(ungatePacketWrites)
  const { broker: b, onPublished } = await broker(t, gate)
  const pub = packetClient(t, b)
  await pub.connect('pub')
  const { acked, published } = await pubackBeforePublished(pub, onPublished, 7)
  t.equal(acked, false, 'no PUBACK while the message is not stored (a PINGRESP came first)')
  gate.release(published.client.conn as never, 7, true)
  const { packet } = await pub.waitFor((p) => p.cmd === 'puback', 'PUBACK')
  t.equal(packet.messageId, 7, 'the held PUBACK is written on release')
  t.equal(pub.closed, false)

  // A second message on the same connection: held and released the same way.
  pub.send({ cmd: 'publish', topic: 't/1', payload: Buffer.from('m'), qos: 1, messageId: 8, retain: false, dup: false })
  const second = await onPublished()
  t.equal(second.messageId, 8)
  gate.release(second.client.conn as never, 8, true)
  await pub.waitFor((p) => p.cmd === 'puback' && p.messageId === 8, 'PUBACK 8')

  // Other packets and QoS 0 pass untouched.
  pub.send({ cmd: 'publish', topic: 't/0', payload: Buffer.from('m'), qos: 0, retain: false, dup: false })
  await pub.ping()
})

t.test('with the gate a failed store drops the PUBACK and ends the connection', async (t) => {
  const gate = new PubackGate()
  t.teardown(ungatePacketWrites)
  const { broker: b, onPublished } = await broker(t, gate)
  const pub = packetClient(t, b)
  await pub.connect('pub')
  const { acked, published } = await pubackBeforePublished(pub, onPublished, 9)
  t.equal(acked, false)
  gate.release(published.client.conn as never, 9, false)
  await pub.waitClosed()
  t.equal(pub.received.some((p) => p.cmd === 'puback'), false, 'never acknowledged: the client sends it again')
})

t.test('a connection the gate does not know is left alone', async (t) => {
  const gate = new PubackGate()
  t.teardown(ungatePacketWrites)
  const { broker: b, onPublished } = await broker(t, undefined)
  t.ok(gate, 'a gate is installed process-wide')
  const pub = packetClient(t, b)
  await pub.connect('pub')
  const { acked } = await pubackBeforePublished(pub, onPublished, 3)
  t.equal(acked, true, 'not expected by the gate: written at once')
})
