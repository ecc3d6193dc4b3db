import t from 'tap'
import { createRequire } from 'node:module'
import { PassThrough } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { numbersUncached } from '../../../../src/engine/internals/index.js'
import { startGateway } from '../../../helpers/gateway.js'
import mqtt from 'mqtt'

// mqtt-packet's private cache object, read to prove it stays empty (tests may look; src may not).
const numbers = createRequire(import.meta.url)('mqtt-packet/numbers.js') as { cache: Record<number, Buffer> }

/** What writeToStream wrote (it corks the stream until the next tick). */
async function written (packet: object): Promise<Buffer> {
  const out = new PassThrough()
  const chunks: Buffer[] = []
  out.on('data', (c: Buffer) => chunks.push(c))
  ;(mqttPacket.writeToStream as (p: object, s: PassThrough) => boolean)(packet, out)
  await new Promise((resolve) => setImmediate(resolve))
  return Buffer.concat(chunks)
}

t.test('a gateway writes packets without building the 65,536-buffer number cache', async (t) => {
  t.equal(numbersUncached(), false, 'the library caches numbers by default')
  const { urls } = await startGateway(t)
  t.equal(numbersUncached(), true, 'the gateway turned the cache off when it made its broker')
  // A real session: CONNACK, SUBACK with its packet id, a QoS 1 PUBLISH with a topic length and an id.
  const c = await mqtt.connectAsync(urls.mqtt, { clientId: 'nums', reconnectPeriod: 0 })
  t.teardown(() => c.endAsync(true))
  await c.subscribeAsync('nums/#', { qos: 1 })
  const got = new Promise<{ topic: string, payload: string, qos: number, id: number | undefined }>((resolve) => {
    c.once('message', (topic, payload, packet) => resolve({ topic, payload: String(payload), qos: packet.qos, id: packet.messageId }))
  })
  await c.publishAsync('nums/x', 'hi', { qos: 1 })
  const m = await got
  t.equal(m.topic, 'nums/x')
  t.equal(m.payload, 'hi')
  t.equal(m.qos, 1, 'delivered at QoS 1, with a packet id')
  t.ok(typeof m.id === 'number' && m.id > 0)
  t.equal(Object.keys(numbers.cache).length, 0, 'no number buffer was cached')
})

t.test('without the cache, ids and lengths are written as the spec says (two bytes, big-endian)', async (t) => {
  t.equal(numbersUncached(), true)
  for (const id of [1, 255, 256, 4660, 65535]) {
    const bytes = await written({ cmd: 'puback', messageId: id })
    t.same([...bytes], [0x40, 2, id >> 8, id & 0xff], `PUBACK ${id}`)
  }
  const topic = 'a'.repeat(300)
  const pub = await written({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId: 513, retain: false, dup: false })
  t.same(pub, mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId: 513, retain: false, dup: false }))
  t.same([...pub.subarray(3, 5)], [1, 44], 'topic length 300 as 0x01 0x2c [MQTT-1.5.3]')
  t.same([...pub.subarray(5 + 300, 5 + 302)], [2, 1], 'packet id 513')
})
