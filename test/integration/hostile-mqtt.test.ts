// Hostile input on the MQTT/TCP door: random bytes, valid packets truncated and mutated,
// hundreds of connections, and a fixed header declaring a huge packet then trickling
// its body. After each, a /ws and an MQTT client still exchange messages.
import t from 'tap'
import { generate, type Packet } from 'mqtt-packet'
import { startGateway } from '../helpers/gateway.js'
import { assertHealthy, portOf, prng, RawConn } from '../helpers/security.js'

const SEED = Number(process.env.FUSION_FUZZ_SEED ?? Date.now() % 1_000_000)
t.comment(`fuzz seed ${SEED} (FUSION_FUZZ_SEED=${SEED} replays it)`)

/** Runs `fn` over `items`, at most `width` at a time. */
async function inBatches<I> (items: readonly I[], width: number, fn: (item: I) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn))
}

function connectPacket (clientId: string, extra: Record<string, unknown> = {}): Buffer {
  return generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30, ...extra } as Packet)
}

function session (rand: () => number, n: number): Buffer {
  const packets: Packet[] = [
    { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: rand() < 0.7, clientId: `fuzz-${n}`, keepalive: 10, ...(rand() < 0.3 ? { username: 'u', password: Buffer.from('p') } : {}), ...(rand() < 0.3 ? { will: { topic: `fuzz/will/${n}`, payload: Buffer.from('bye'), qos: 0, retain: false } } : {}) } as Packet,
    { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: rand() < 0.5 ? 'fuzz/#' : `fuzz/${n}/+`, qos: rand() < 0.5 ? 0 : 1 }] } as Packet,
    { cmd: 'publish', topic: `fuzz/${n}/x`, payload: Buffer.from('payload '.repeat(1 + Math.floor(rand() * 20))), qos: rand() < 0.5 ? 0 : 1, messageId: 2, retain: rand() < 0.2, dup: false } as Packet,
    { cmd: 'pingreq' } as Packet,
    { cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['fuzz/#'] } as Packet,
    { cmd: 'puback', messageId: 7 } as Packet,
    { cmd: 'disconnect' } as Packet
  ]
  return Buffer.concat(packets.map((p) => generate(p)))
}

/** One of: truncate, flip bytes, insert bytes, drop a byte, repeat a slice. */
function mutate (buf: Buffer, rand: () => number): Buffer {
  const at = (): number => Math.floor(rand() * buf.length)
  switch (Math.floor(rand() * 5)) {
    case 0: return buf.subarray(0, at())
    case 1: {
      const out = Buffer.from(buf)
      for (let i = 0, n = 1 + Math.floor(rand() * 6); i < n; i++) out[at()] = Math.floor(rand() * 256)
      return out
    }
    case 2: {
      const i = at()
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * 256)))
      return Buffer.concat([buf.subarray(0, i), junk, buf.subarray(i)])
    }
    case 3: {
      const i = at()
      return Buffer.concat([buf.subarray(0, i), buf.subarray(i + 1)])
    }
    default: {
      const i = at()
      const j = Math.min(buf.length, i + 1 + Math.floor(rand() * 40))
      return Buffer.concat([buf.subarray(0, j), buf.subarray(i, j), buf.subarray(j)])
    }
  }
}

/** Opens a raw connection, writes `data`, waits for the close at most `ms`, then ends it. */
async function throwAt (port: number, data: Buffer, ms: number): Promise<void> {
  const c = new RawConn(port)
  try {
    await c.opened
    c.write(data)
    await c.closedWithin(ms)
  } finally {
    c.destroy()
  }
}

t.test('random bytes, then truncated and mutated packets: the door keeps serving', async (t) => {
  const { gateway, urls } = await startGateway(t, { connectRate: 100_000 })
  const port = portOf(urls.mqtt)
  const rand = prng(SEED)
  const randomBlobs = Array.from({ length: 150 }, () => Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 2048) }, () => Math.floor(rand() * 256))))
  const t0 = Date.now()
  await inBatches(randomBlobs, 25, (b) => throwAt(port, b, 150))
  t.comment(`150 connections of random bytes in ${Date.now() - t0} ms`)
  await assertHealthy(t, urls, 'random bytes')

  const mutated = Array.from({ length: 300 }, (_, n) => mutate(session(rand, n), rand))
  const t1 = Date.now()
  await inBatches(mutated, 25, (b) => throwAt(port, b, 150))
  t.comment(`300 connections of mutated packets in ${Date.now() - t1} ms; dropped ${JSON.stringify(gateway.stats.dropped)}`)
  await assertHealthy(t, urls, 'mutated packets')
})

t.test('hundreds of connections at once', async (t) => {
  const { gateway, urls } = await startGateway(t, { connectRate: 100_000 })
  const port = portOf(urls.mqtt)
  const conns = Array.from({ length: 400 }, () => new RawConn(port))
  t.teardown(() => { for (const c of conns) c.destroy() })
  await Promise.all(conns.map((c) => c.opened))
  conns.forEach((c, i) => c.write(connectPacket(`many-${i}`)))
  const acks = await Promise.all(conns.map((c) => c.waitBytes(4, 10_000)))
  t.equal(acks.filter((b) => b[0] === 0x20 && b[3] === 0).length, 400, 'every one of 400 gets CONNACK 0')
  t.ok(gateway.broker.connectedClients >= 400, `${gateway.broker.connectedClients} clients connected`)
  await assertHealthy(t, urls, '400 open connections')
  for (const c of conns) c.destroy()
  await Promise.all(conns.map((c) => c.closed))
})

t.test('a fixed header declaring a huge packet is cut at once, before its body trickles in', async (t) => {
  const { gateway, urls } = await startGateway(t)
  const port = portOf(urls.mqtt)
  for (const connected of [true, false]) {
    const c = new RawConn(port)
    t.teardown(() => c.destroy())
    await c.opened
    if (connected) {
      c.write(connectPacket('trickler'))
      const ack = await c.waitBytes(4, 5000)
      t.equal(ack[0], 0x20, 'CONNACK first')
    }
    // PUBLISH, remaining length 268,435,455 (the MQTT maximum), one byte at a time.
    const header = [0x30, 0xff, 0xff, 0xff, 0x7f]
    let lastHeaderByteAt = 0
    for (const b of header) {
      c.write(Buffer.from([b]))
      lastHeaderByteAt = Date.now()
      if (await c.closedWithin(20)) break
    }
    let trickled = 0
    while (trickled < 100 && !(await c.closedWithin(20))) {
      c.write(Buffer.from([0x61]))
      trickled++
    }
    t.ok(c.closedAt !== undefined, `cut (${connected ? 'after CONNECT' : 'before CONNECT'})`)
    const ms = (c.closedAt ?? Date.now()) - lastHeaderByteAt
    t.ok(ms < 500, `closed ${ms} ms after the last header byte, after ${trickled} body bytes`)
  }
  t.ok(gateway.stats.dropped.tooLarge >= 2, 'counted as too large')
  // A malformed remaining length (a fifth continuation byte) is cut too [MQTT-2.2.3].
  const m = new RawConn(port)
  t.teardown(() => m.destroy())
  await m.opened
  m.write(connectPacket('malformed'))
  await m.waitBytes(4, 5000)
  m.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))
  t.ok(await m.closedWithin(2000), 'a five-byte remaining length is cut')
  await assertHealthy(t, urls, 'huge declared packets')
})
