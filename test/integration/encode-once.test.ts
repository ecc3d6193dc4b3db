// Packet-level tests of the encode-once delivery (src/engine/fanout/): raw MQTT 3.1.1
// clients over TCP and over WebSocket read the exact bytes the gateway writes.
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import WebSocket from 'ws'
import mqttPacket from 'mqtt-packet'
import { startGateway, type T } from '../helpers/gateway.js'
import { filterMatches } from '../../src/engine/fanout/filter-match.js'
import { PublishEncoding } from '../../src/engine/fanout/publish-bytes.js'
import { ruleCovers, splitLevels } from '../../src/core/topics/topic-match.js'

interface Parsed { cmd: string, topic?: string, payload?: Buffer, qos?: number, dup?: boolean, retain?: boolean, messageId?: number, granted?: number[], returnCode?: number }
interface Frame { raw: Buffer, packet: Parsed }

/** Splits a byte stream into whole MQTT packets (fixed header + remaining length). */
class Splitter {
  #buf = Buffer.alloc(0)
  push (chunk: Buffer): Buffer[] {
    this.#buf = Buffer.concat([this.#buf, chunk])
    const out: Buffer[] = []
    for (;;) {
      let len = 0
      let mul = 1
      let i = 1
      let done = false
      for (; i < Math.min(this.#buf.length, 5); i++) {
        const b = this.#buf[i] as number
        len += (b & 0x7f) * mul
        mul *= 128
        if (!(b & 0x80)) { done = true; i++; break }
      }
      if (!done || this.#buf.length < i + len) return out
      out.push(this.#buf.subarray(0, i + len))
      this.#buf = this.#buf.subarray(i + len)
    }
  }
}

function decode (raw: Buffer): Parsed {
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  let got: Parsed | undefined
  parser.on('packet', (p) => { got = p as unknown as Parsed })
  parser.on('error', (err: Error) => { throw err })
  parser.parse(raw)
  if (!got) throw new Error(`not one packet: ${raw.toString('hex')}`)
  return got
}

/** A bare MQTT 3.1.1 client that keeps every packet it receives, raw and parsed. */
class RawClient {
  readonly frames: Frame[] = []
  readonly #send: (b: Buffer) => void
  #waiters: Array<{ test: (f: Frame) => boolean, resolve: (f: Frame) => void }> = []
  readonly #close: () => void

  constructor (send: (b: Buffer) => void, close: () => void) { this.#send = send; this.#close = close }

  static async tcp (t: T, url: string): Promise<RawClient> {
    const u = new URL(url)
    const socket = net.connect(Number(u.port), u.hostname)
    await once(socket, 'connect')
    const client = new RawClient((b) => socket.write(b), () => socket.destroy())
    const split = new Splitter()
    socket.on('data', (d: Buffer) => { for (const raw of split.push(d)) client.#got(raw) })
    socket.on('error', () => {})
    t.teardown(() => socket.destroy())
    return client
  }

  static async ws (t: T, url: string): Promise<RawClient> {
    const ws = new WebSocket(url, 'mqtt')
    await once(ws, 'open')
    const client = new RawClient((b) => ws.send(b), () => ws.terminate())
    const split = new Splitter()
    ws.on('message', (d: Buffer) => { for (const raw of split.push(d)) client.#got(raw) })
    ws.on('error', () => {})
    t.teardown(() => ws.terminate())
    return client
  }

  #got (raw: Buffer): void {
    const f = { raw: Buffer.from(raw), packet: decode(raw) }
    this.frames.push(f)
    this.#waiters = this.#waiters.filter((w) => { if (w.test(f)) { w.resolve(f); return false } return true })
  }

  send (packet: Record<string, unknown>): void { this.#send(mqttPacket.generate(packet as never)) }
  sendRaw (b: Buffer): void { this.#send(b) }
  close (): void { this.#close() }

  wait (test: (f: Frame) => boolean, what: string, ms = 5000): Promise<Frame> {
    const found = this.frames.find(test)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
      this.#waiters.push({ test, resolve: (f) => { clearTimeout(timer); resolve(f) } })
    })
  }

  publishes (topic: string): Frame[] { return this.frames.filter((f) => f.packet.cmd === 'publish' && f.packet.topic === topic) }

  async connect (clientId: string, clean = true): Promise<void> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 60 })
    const ack = await this.wait((f) => f.packet.cmd === 'connack', 'CONNACK')
    if (ack.packet.returnCode !== 0) throw new Error(`CONNACK ${ack.packet.returnCode}`)
  }

  #nextId = 1
  async subscribe (subs: Array<[string, number]>): Promise<number[]> {
    const messageId = this.#nextId++
    this.send({ cmd: 'subscribe', messageId, subscriptions: subs.map(([topic, qos]) => ({ topic, qos })) })
    const ack = await this.wait((f) => f.packet.cmd === 'suback' && f.packet.messageId === messageId, 'SUBACK')
    return ack.packet.granted ?? []
  }
}

/** The PUBLISH bytes MQTT 3.1.1 section 3.3 prescribes, written out by hand. */
function expectedPublish (topic: string, payload: Buffer, qos: number, retain: boolean, id?: number): Buffer {
  const t8 = Buffer.from(topic, 'utf8')
  const body = Buffer.concat([Buffer.from([t8.length >> 8, t8.length & 0xff]), t8, qos > 0 ? Buffer.from([(id ?? 0) >> 8, (id ?? 0) & 0xff]) : Buffer.alloc(0), payload])
  const len: number[] = []
  let n = body.length
  do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; len.push(b) } while (n > 0)
  return Buffer.concat([Buffer.from([0x30 | (qos << 1) | (retain ? 1 : 0), ...len]), body])
}

t.test('QoS 0: a TCP and a WS subscriber receive byte-identical, spec-correct PUBLISH packets', async (t) => {
  const { urls } = await startGateway(t)
  const tcp = await RawClient.tcp(t, urls.mqtt)
  const ws = await RawClient.ws(t, urls['mqtt-ws'] as string)
  await tcp.connect('eo-tcp')
  await ws.connect('eo-ws')
  t.same(await tcp.subscribe([['eo/+', 0]]), [0])
  t.same(await ws.subscribe([['eo/#', 0]]), [0])
  const pub = await RawClient.tcp(t, urls.mqtt)
  await pub.connect('eo-pub')
  // DUP=1, RETAIN=1 on the way in: live copies carry DUP 0 [MQTT-3.3.1-2/-3] and RETAIN 0 [MQTT-3.3.1-9].
  const payload = Buffer.from('héllo, encode once')
  pub.sendRaw(mqttPacket.generate({ cmd: 'publish', topic: 'eo/a', payload, qos: 0, dup: false, retain: true } as never))
  // Many messages in one write: each subscriber gets them all, in order, whole.
  const burst = Array.from({ length: 50 }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic: 'eo/burst', payload: Buffer.from(`m${i}`), qos: 0, dup: false, retain: false } as never))
  pub.sendRaw(Buffer.concat(burst))
  const a = await tcp.wait((f) => f.packet.topic === 'eo/a', 'eo/a on TCP')
  const b = await ws.wait((f) => f.packet.topic === 'eo/a', 'eo/a on WS')
  t.same(a.raw, b.raw, 'the same bytes on both doors')
  t.same(a.raw, expectedPublish('eo/a', payload, 0, false), 'QoS 0, DUP 0, RETAIN 0 on a live copy, no packet id')
  await tcp.wait((f) => f.packet.topic === 'eo/burst' && String(f.packet.payload) === 'm49', 'the last of the burst on TCP')
  await ws.wait((f) => f.packet.topic === 'eo/burst' && String(f.packet.payload) === 'm49', 'the last of the burst on WS')
  for (const c of [tcp, ws]) {
    const got = c.publishes('eo/burst')
    t.same(got.map((f) => String(f.packet.payload)), burst.map((_, i) => `m${i}`), 'every message once, in order')
    t.same(got.map((f) => f.raw), burst.map((_, i) => expectedPublish('eo/burst', Buffer.from(`m${i}`), 0, false)))
  }
  // The retained copy sent to a new subscription carries RETAIN 1 [MQTT-3.3.1-8].
  const late = await RawClient.tcp(t, urls.mqtt)
  await late.connect('eo-late')
  await late.subscribe([['eo/a', 1]])
  const r = await late.wait((f) => f.packet.topic === 'eo/a', 'the retained eo/a')
  t.same(r.raw, expectedPublish('eo/a', payload, 0, true), 'retained QoS 0 message: RETAIN 1, QoS 0')
})

t.test('QoS 1: copies differ only in their packet id; ids per subscriber distinct, acked, and at the granted QoS', async (t) => {
  const { urls } = await startGateway(t)
  const tcp = await RawClient.tcp(t, urls.mqtt)
  const ws = await RawClient.ws(t, urls['mqtt-ws'] as string)
  const low = await RawClient.tcp(t, urls.mqtt)
  const both = await RawClient.tcp(t, urls.mqtt)
  await tcp.connect('q1-tcp')
  await ws.connect('q1-ws')
  await low.connect('q1-low')
  await both.connect('q1-both')
  t.same(await tcp.subscribe([['q1/x', 1]]), [1])
  t.same(await ws.subscribe([['q1/+', 2]]), [2])
  t.same(await low.subscribe([['q1/#', 0]]), [0])
  // Overlapping subscriptions: one copy, at the highest granted QoS [MQTT-3.3.5-1].
  t.same(await both.subscribe([['q1/#', 0], ['q1/+', 1]]), [0, 1])
  const pub = await RawClient.tcp(t, urls.mqtt)
  await pub.connect('q1-pub')
  const N = 20
  const payloads = Array.from({ length: N }, (_, i) => Buffer.from(`qos one ${i} `.repeat(i % 2 ? 1 : 200)))
  // A retransmitted PUBLISH (DUP 1) in: the copies out are first transmissions, DUP 0 [MQTT-3.3.1-3].
  pub.sendRaw(Buffer.concat(payloads.map((payload, i) => mqttPacket.generate({ cmd: 'publish', topic: 'q1/x', payload, qos: 1, messageId: i + 1, dup: i === 0, retain: false } as never))))
  for (const c of [tcp, ws, low, both]) await c.wait((f) => f.packet.topic === 'q1/x' && f.packet.payload?.equals(payloads[N - 1] as Buffer) === true, 'the last message')
  const ids = (c: RawClient): number[] => c.publishes('q1/x').map((f) => f.packet.messageId as number)
  for (const [name, c, qos] of [['tcp', tcp, 1], ['ws', ws, 1], ['both', both, 1]] as const) {
    const got = c.publishes('q1/x')
    t.equal(got.length, N, `${name}: every message once`)
    t.same(got.map((f) => f.packet.payload), payloads, `${name}: in order`)
    t.ok(got.every((f) => f.packet.qos === qos && f.packet.dup === false && f.packet.retain === false), `${name}: QoS ${qos}, DUP 0, RETAIN 0`)
    t.equal(new Set(ids(c)).size, N, `${name}: distinct packet ids`)
    t.ok(ids(c).every((id) => id >= 1 && id <= 65535), `${name}: ids in 1..65535 [MQTT-2.3.1-1]`)
    got.forEach((f, i) => t.same(f.raw, expectedPublish('q1/x', payloads[i] as Buffer, qos, false, f.packet.messageId), `${name}: message ${i} byte for byte`))
    for (const id of ids(c)) c.send({ cmd: 'puback', messageId: id })
  }
  // The WS subscriber holds QoS 2 but the publish is QoS 1: QoS 1. The TCP and WS copies
  // of one message are the same bytes but for the id.
  const strip = (b: Buffer, id: number): string => { const h = b.toString('hex'); return h.replace(Buffer.from([id >> 8, id & 0xff]).toString('hex'), '') }
  const a = tcp.publishes('q1/x')[3] as Frame
  const b = ws.publishes('q1/x')[3] as Frame
  t.equal(strip(a.raw, a.packet.messageId as number), strip(b.raw, b.packet.messageId as number), 'TCP and WS copies differ only in the id')
  const lows = low.publishes('q1/x')
  t.equal(lows.length, N)
  t.ok(lows.every((f) => f.packet.qos === 0 && f.packet.messageId === undefined), 'a QoS 0 wildcard subscription gets QoS 0 [MQTT-3.3.5-1]')
  t.same(lows.map((f) => f.raw), payloads.map((p) => expectedPublish('q1/x', p, 0, false)))
  // The subscribers acked: the connections stay up and keep receiving.
  pub.send({ cmd: 'publish', topic: 'q1/x', payload: Buffer.from('after'), qos: 1, messageId: 100, dup: false, retain: false })
  for (const c of [tcp, ws, low, both]) await c.wait((f) => String(f.packet.payload) === 'after', 'one more after the acks')
})

t.test('QoS 2 through a QoS 2 subscription: QoS 2 copies with their own ids', async (t) => {
  const { urls } = await startGateway(t)
  const sub = await RawClient.tcp(t, urls.mqtt)
  await sub.connect('q2-sub')
  t.same(await sub.subscribe([['q2/#', 2]]), [2])
  const pub = await RawClient.tcp(t, urls.mqtt)
  await pub.connect('q2-pub')
  pub.send({ cmd: 'publish', topic: 'q2/a', payload: Buffer.from('two'), qos: 2, messageId: 7, dup: false, retain: false })
  await pub.wait((f) => f.packet.cmd === 'pubrec', 'PUBREC')
  pub.send({ cmd: 'pubrel', messageId: 7 })
  const f = await sub.wait((x) => x.packet.topic === 'q2/a', 'the QoS 2 copy')
  t.same(f.raw, expectedPublish('q2/a', Buffer.from('two'), 2, false, f.packet.messageId))
  sub.send({ cmd: 'pubrec', messageId: f.packet.messageId })
  await sub.wait((x) => x.packet.cmd === 'pubrel' && x.packet.messageId === f.packet.messageId, 'PUBREL')
  sub.send({ cmd: 'pubcomp', messageId: f.packet.messageId })
})

t.test('the encoder: every size of remaining length, and the id patch', async (t) => {
  for (const size of [0, 1, 100, 127 - 8, 200, 16_383, 16_384 + 10, 70_000]) {
    const payload = Buffer.alloc(size, 7)
    const enc = PublishEncoding.of({ topic: 'a/b', payload, retain: false, brokerId: 'x', brokerCounter: size })
    if (!enc) throw new Error('not encodable')
    t.same(enc.qos0(), expectedPublish('a/b', payload, 0, false), `QoS 0, ${size} B`)
    t.same(enc.bytes(1, 513), expectedPublish('a/b', payload, 1, false, 513), `QoS 1, ${size} B`)
    const chunks: Buffer[] = []
    enc.writeWithId({ write: (b: Buffer) => { chunks.push(Buffer.from(b)); return true }, destroyed: false } as never, 2, 65535)
    t.same(Buffer.concat(chunks), expectedPublish('a/b', payload, 2, false, 65535), `QoS 2 written, ${size} B`)
  }
  t.equal(PublishEncoding.of({ topic: 'x'.repeat(65_536), payload: Buffer.alloc(0), retain: false }), undefined, 'a topic over 65,535 bytes is not encoded')
})

t.test('filterMatches agrees with the ACL matcher on topic names', async (t) => {
  const filters = ['#', '+', 'a', 'a/#', 'a/+', '+/+', '+/b', 'a/b', 'a/b/#', 'a/+/c', '+/#', '$SYS/#', '$SYS/+', '/#', '+/', 'a/', '/', '//', '+/+/+', 'a/b/c/#']
  const topics = ['a', 'b', 'a/b', 'a/c', 'a/b/c', 'a/b/c/d', '/a', 'a/', '/', '//', '$SYS', '$SYS/x', '$SYS/x/y', 'ab', 'a/bc', 'x/b']
  let n = 0
  for (const f of filters) {
    for (const topic of topics) {
      t.equal(filterMatches(f, topic), ruleCovers(splitLevels(f), splitLevels(topic)), `${f} vs ${topic}`)
      n++
    }
  }
  t.ok(n > 300)
})
