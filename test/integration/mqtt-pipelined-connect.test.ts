// MQTT 3.1.1 section 3.1.4: "Clients are allowed to send further Control Packets
// immediately after sending a CONNECT Packet; Clients need not wait for a CONNACK". Stock
// Aedes queues what follows CONNECT until its CONNACK write completes and drops the
// connection, without a CONNACK, past 42 queued packets (Client queue limit reached). A
// device flushing its offline queue on reconnect does exactly this.
import t from 'tap'
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet'
import WebSocket from 'ws'
import { startGateway, openMqtt, delay } from '../helpers/gateway.js'
import { portOf, RawConn } from '../helpers/security.js'

const connect = (clientId: string): Buffer => generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30 } as Packet)
const publish = (i: number): Buffer => generate({ cmd: 'publish', topic: 'pipe/in', payload: Buffer.from(`m${i}`), qos: 1, messageId: i + 1, retain: false, dup: false } as Packet)
const PING = generate({ cmd: 'pingreq' } as Packet)

/** The packets in `bytes`, parsed. */
function packets (bytes: Buffer): Packet[] {
  const out: Packet[] = []
  const p = mqttParser()
  p.on('packet', (x: Packet) => out.push(x))
  p.parse(bytes)
  return out
}

t.test('CONNECT, 300 QoS 1 PUBLISHes and a PINGREQ in one write: CONNACK, 300 PUBACKs in order, PINGRESP; a subscriber gets all 300 in order', async (t) => {
  const { urls } = await startGateway(t)
  const sub = await openMqtt(t, urls.mqtt)
  await sub.subscribeAsync('pipe/in', { qos: 1 })
  const got: string[] = []
  sub.on('message', (_topic, payload) => got.push(payload.toString()))

  const c = new RawConn(portOf(urls.mqtt))
  t.teardown(() => c.destroy())
  await c.opened
  const n = 300
  c.write(Buffer.concat([connect('pipelined'), ...Array.from({ length: n }, (_, i) => publish(i)), PING]))
  // CONNACK 4 bytes, PUBACK 4 bytes each, PINGRESP 2 bytes.
  const bytes = await c.waitBytes(4 + 4 * n + 2, 10_000)
  const seen = packets(bytes)
  t.equal(c.closedAt, undefined, 'still connected')
  t.equal(seen[0]?.cmd, 'connack', 'the CONNACK comes first')
  t.equal((seen[0] as { returnCode?: number }).returnCode, 0)
  const acks = seen.filter((p) => p.cmd === 'puback').map((p) => (p as { messageId: number }).messageId)
  t.same(acks, Array.from({ length: n }, (_, i) => i + 1), 'every PUBLISH acknowledged, in order')
  t.equal(seen.filter((p) => p.cmd === 'pingresp').length, 1, 'the PINGREQ answered')
  for (let i = 0; i < 100 && got.length < n; i++) await delay(50)
  t.same(got, Array.from({ length: n }, (_, i) => `m${i}`), 'the subscriber got every message, in order')
})

t.test('the same over MQTT/WebSocket, the packets in one frame', async (t) => {
  const { urls } = await startGateway(t)
  const ws = new WebSocket(urls['mqtt-ws'], ['mqtt'])
  t.teardown(() => ws.terminate())
  const received: Buffer[] = []
  ws.on('message', (d: Buffer) => received.push(d))
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const n = 100
  ws.send(Buffer.concat([connect('pipelined-ws'), ...Array.from({ length: n }, (_, i) => publish(i)), PING]))
  for (let i = 0; i < 200 && Buffer.concat(received).length < 4 + 4 * n + 2; i++) await delay(25)
  const seen = packets(Buffer.concat(received))
  t.equal(seen[0]?.cmd, 'connack')
  t.equal(seen.filter((p) => p.cmd === 'puback').length, n, 'every PUBLISH acknowledged')
  t.equal(seen.filter((p) => p.cmd === 'pingresp').length, 1, 'the PINGREQ answered')
  t.equal(ws.readyState, WebSocket.OPEN, 'still connected')
})

t.test('packets written one by one right after CONNECT, before any answer, are all handled', async (t) => {
  const { urls } = await startGateway(t)
  const c = new RawConn(portOf(urls.mqtt))
  t.teardown(() => c.destroy())
  await c.opened
  c.write(connect('one-by-one'))
  const n = 80
  for (let i = 0; i < n; i++) c.write(publish(i))
  c.write(PING)
  const seen = packets(await c.waitBytes(4 + 4 * n + 2, 10_000))
  t.equal(seen[0]?.cmd, 'connack')
  t.equal(seen.filter((p) => p.cmd === 'puback').length, n)
  t.equal(c.closedAt, undefined, 'still connected')
})
