// internals: parser-in-turn. Aedes reads the next buffer from inside mqtt-packet's
// 'packet' event when a handler finishes at once (QoS 0 PUBLISH, PINGREQ); the parser is
// not re-entrant. Over an in-memory pair (its `_read` pushes the next write at once) stock
// Aedes loses the PINGREQs below on every Node line.
import t from 'tap'
import { Aedes } from 'aedes'
import { closeAtTeardown, packetClient } from '../../../helpers/mqtt-packets.js'

t.test('every PINGREQ written right after a QoS 0 PUBLISH, each in its own chunk, is answered', async (t) => {
  const broker = await Aedes.createBroker()
  closeAtTeardown(t, broker)
  const c = packetClient(t, broker)
  await c.connect('chunks')
  // A QoS 1 round first (its PUBACK is written asynchronously), then the QoS 0 PUBLISH,
  // which completes synchronously inside the parser: the case that lost the PINGREQ.
  c.send({ cmd: 'publish', topic: 't/1', payload: Buffer.from('m'), qos: 1, messageId: 1, retain: false, dup: false })
  await c.ping()
  c.send({ cmd: 'publish', topic: 't/0', payload: Buffer.from('m'), qos: 0, retain: false, dup: false })
  await c.ping()
  c.send({ cmd: 'publish', topic: 't/0', payload: Buffer.from('m'), qos: 0, retain: false, dup: false })
  c.send({ cmd: 'pingreq' })
  c.send({ cmd: 'pingreq' })
  await c.waitFor((p) => p.cmd === 'pingresp' && c.received.filter((q) => q.cmd === 'pingresp').length >= 4, 'the fourth PINGRESP')
  t.equal(c.received.filter((p) => p.cmd === 'pingresp').length, 4, 'every PINGREQ answered')
  t.equal(c.closed, false)
})
