// Presence of MQTT devices as /ws hub clients see it: online when a device connects,
// offline when it dies (TCP reset, or silence past 1.5x its keepalive), retained on
// presence/<id> for whoever looks later.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import * as mqttPacket from 'mqtt-packet'
import { startGateway, openHub, openMqtt, nextMqttMessage, type HubClient, type HubFrame, type T } from '../helpers/gateway.js'

/** A hand-driven MQTT 3.1.1 connection: exactly the packets a small device sends, and no more. */
class RawMqtt {
  readonly packets: mqttPacket.Packet[] = []
  readonly closed: Promise<void>
  #waiters = new Set<{ test: (p: mqttPacket.Packet) => boolean, resolve: (p: mqttPacket.Packet) => void }>()

  constructor (readonly socket: Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (p: mqttPacket.Packet) => {
      this.packets.push(p)
      for (const w of this.#waiters) if (w.test(p)) { this.#waiters.delete(w); w.resolve(p) }
    })
    socket.on('data', (d) => parser.parse(d))
    socket.on('error', () => {})
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  static async open (t: T, mqttUrl: string): Promise<RawMqtt> {
    const u = new URL(mqttUrl)
    const socket = connect(Number(u.port), '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    return new RawMqtt(socket)
  }

  send (...packets: mqttPacket.Packet[]): void {
    // One write: a device's packets often arrive in one TCP segment.
    this.socket.write(Buffer.concat(packets.map((p) => mqttPacket.generate(p))))
  }

  wait<P extends mqttPacket.Packet = mqttPacket.Packet> (cmd: string, timeoutMs = 5000): Promise<P> {
    const found = this.packets.find((p) => p.cmd === cmd)
    if (found) return Promise.resolve(found as P)
    return new Promise((resolve, reject) => {
      const w = { test: (p: mqttPacket.Packet) => p.cmd === cmd, resolve: (p: mqttPacket.Packet) => { clearTimeout(timer); resolve(p as P) } }
      const timer = setTimeout(() => { this.#waiters.delete(w); reject(new Error(`no ${cmd} within ${timeoutMs} ms`)) }, timeoutMs)
      this.#waiters.add(w)
    })
  }
}

function connectPacket (clientId: string, opts: { keepalive?: number, will?: boolean, clean?: boolean } = {}): mqttPacket.IConnectPacket {
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clientId,
    clean: opts.clean ?? true,
    keepalive: opts.keepalive ?? 30,
    ...(opts.will ? { will: { topic: `presence/${clientId}`, payload: Buffer.from('offline'), qos: 1 as const, retain: true } } : {})
  }
}

function presenceOf (hub: HubClient, clientId: string, status: 'online' | 'offline', timeoutMs = 5000): Promise<HubFrame> {
  return hub.waitJson('presence', (f) => f.clientId === clientId && f.status === status, timeoutMs)
}

/** The retained presence/<id>, read as a late MQTT subscriber would. */
async function retainedPresence (t: T, mqttUrl: string, clientId: string): Promise<{ payload: string, retain: boolean }> {
  const late = await openMqtt(t, mqttUrl)
  const got = nextMqttMessage(late, (topic) => topic === `presence/${clientId}`)
  await late.subscribeAsync(`presence/${clientId}`)
  const m = await got
  await late.endAsync()
  return { payload: m.payload.toString(), retain: m.retain }
}

t.test('a device that connects shows online to /ws clients, named by its username', async (t) => {
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'watcher' })
  await hub.waitJson('history')
  await openMqtt(t, urls.mqtt, { clientId: 'kitchen-1', username: 'Kitchen sensor', keepalive: 10 })
  const p = await presenceOf(hub, 'kitchen-1', 'online')
  t.match(p, { type: 'presence', clientId: 'kitchen-1', name: 'Kitchen sensor', status: 'online', via: 'mqtt' })
  t.type(p.ts, 'number')
  const r = await retainedPresence(t, urls.mqtt, 'kitchen-1')
  t.equal(r.retain, true)
  t.match(JSON.parse(r.payload), { status: 'online', name: 'Kitchen sensor', via: 'mqtt' })
})

t.test('a TCP reset: the will says offline, /ws sees it, a late subscriber reads it retained', async (t) => {
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'watcher' })
  await hub.waitJson('history')
  const dev = await RawMqtt.open(t, urls.mqtt)
  dev.send(connectPacket('dev-reset', { will: true, clean: false }))
  t.match(await dev.wait('connack'), { returnCode: 0 })
  await presenceOf(hub, 'dev-reset', 'online')
  dev.socket.resetAndDestroy()
  const off = await presenceOf(hub, 'dev-reset', 'offline')
  t.match(off, { clientId: 'dev-reset', name: 'dev-reset', status: 'offline', via: 'mqtt' })
  t.same(await retainedPresence(t, urls.mqtt, 'dev-reset'), { payload: 'offline', retain: true }, 'the will, retained')

  // A /ws client that subscribes later gets the retained message too...
  const late = await openHub(t, urls.ws, { name: 'late' })
  const welcome = await late.waitJson('welcome')
  await late.subscribe('presence/+')
  const m = await late.waitMessage('presence/dev-reset')
  t.match(m, { payload: 'offline', retain: true })
  // ...and the list of who is online that it got on joining does not name the device.
  await presenceOf(late, welcome.clientId, 'online')
  t.notOk(late.json('presence').some((f) => f.clientId === 'dev-reset' && f.status === 'online'))
})

t.test('a device silent past its keepalive goes offline within 1.5x keepalive', async (t) => {
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'watcher' })
  await hub.waitJson('history')
  const keepalive = 1
  const dev = await RawMqtt.open(t, urls.mqtt)
  dev.send(connectPacket('dev-quiet', { keepalive }))
  await dev.wait('connack')
  await presenceOf(hub, 'dev-quiet', 'online')
  const t0 = Date.now()
  // No PINGREQ from here on: the socket stays open, the device says nothing.
  const off = await presenceOf(hub, 'dev-quiet', 'offline', 10_000)
  const ms = Date.now() - t0
  t.ok(ms >= keepalive * 1000, `not before the keepalive (${ms} ms)`)
  t.ok(ms <= keepalive * 1500 + 750, `within 1.5x keepalive (${ms} ms)`)
  t.match(off, { via: 'mqtt', name: 'dev-quiet' })
  await dev.closed
  const r = await retainedPresence(t, urls.mqtt, 'dev-quiet')
  t.match(JSON.parse(r.payload), { status: 'offline', name: 'dev-quiet', via: 'mqtt' }, 'no will: the gateway speaks for it')
})

t.test('a clean DISCONNECT discards the will: the gateway says offline', async (t) => {
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'watcher' })
  await hub.waitJson('history')
  const dev = await openMqtt(t, urls.mqtt, {
    clientId: 'dev-clean', keepalive: 10, will: { topic: 'presence/dev-clean', payload: Buffer.from('offline'), qos: 1, retain: true }
  })
  await presenceOf(hub, 'dev-clean', 'online')
  await dev.endAsync()
  await presenceOf(hub, 'dev-clean', 'offline')
  const r = await retainedPresence(t, urls.mqtt, 'dev-clean')
  t.match(JSON.parse(r.payload), { status: 'offline', via: 'mqtt' })
})

t.test('a device that is gone before its connect completes is not left online', async (t) => {
  // Aedes sends CONNACK and resumes reading before the last step of its connect (the
  // replay of the session's queue from the store) is done, and emits clientReady only
  // then. A device that answers the CONNACK with a publish the policy refuses (Aedes
  // drops it) or with DISCONNECT is gone before it is "ready"; announcing it online
  // at that point left presence/<id> online for ever. mosquitto_pub hits this against a
  // busy store; here the store's queue replay is held until the device has gone.
  const { urls, gateway } = await startGateway(t)
  const broker = gateway.broker as unknown as {
    persistence: { outgoingStream (c: { id: string }): AsyncIterable<unknown>, createRetainedStream (f: string): AsyncIterable<{ payload: Buffer }> }
  }
  const gone = new Map<string, () => void>()
  gateway.broker.on('clientDisconnect', (c) => gone.get(c.id)?.())
  const outgoingStream = broker.persistence.outgoingStream.bind(broker.persistence)
  broker.persistence.outgoingStream = (client) => {
    if (!client.id.startsWith('fast-')) return outgoingStream(client)
    const left = new Promise<void>((resolve) => { gone.set(client.id, resolve); setTimeout(resolve, 3000).unref() })
    return (async function * slowStore () { await left; yield * outgoingStream(client) })()
  }
  const hub = await openHub(t, urls.ws, { name: 'watcher' })
  await hub.waitJson('history')
  const cases: Array<[string, mqttPacket.Packet]> = [
    ['fast-refused', { cmd: 'publish', topic: 'presence/someone-else', payload: Buffer.from('offline'), qos: 0, retain: true, dup: false }],
    ['fast-disconnect', { cmd: 'disconnect' }]
  ]
  for (const [id, last] of cases) {
    const dev = await RawMqtt.open(t, urls.mqtt)
    dev.socket.once('data', () => dev.socket.end(mqttPacket.generate(last))) // on CONNACK, as mosquitto_pub does
    dev.send(connectPacket(id))
    await dev.closed
    await presenceOf(hub, id, 'offline')
  }
  // A barrier: a later client's presence comes after anything still pending for theirs.
  await openMqtt(t, urls.mqtt, { clientId: 'barrier', keepalive: 10 })
  await presenceOf(hub, 'barrier', 'online')
  for (const [id] of cases) {
    const r = await retainedPresence(t, urls.mqtt, id)
    t.match(JSON.parse(r.payload), { status: 'offline' }, `${id}: retained offline`)
    const last = hub.json('presence').filter((f) => f.clientId === id).at(-1)
    t.equal(last?.status, 'offline', `${id}: the last presence frame says offline`)
  }
  const kept: string[] = []
  for await (const p of broker.persistence.createRetainedStream('presence/someone-else')) kept.push(String(p.payload))
  t.same(kept, [], 'and nobody wrote presence/someone-else')
})

t.test('a device that reconnects with the same id (taking over its half-open session) ends online', async (t) => {
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'watcher' })
  await hub.waitJson('history')
  const first = await RawMqtt.open(t, urls.mqtt)
  first.send(connectPacket('dev-boot', { will: true, clean: false }),
    { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'cmd/dev-boot/#', qos: 1 }] })
  await first.wait('suback')
  await presenceOf(hub, 'dev-boot', 'online')
  const since = hub.frames.length
  // The device rebooted; its old TCP connection is still open on the gateway's side.
  const second = await RawMqtt.open(t, urls.mqtt)
  second.send(connectPacket('dev-boot', { will: true, clean: false }))
  t.match(await second.wait('connack'), { returnCode: 0, sessionPresent: true })
  await first.closed
  await hub.waitFor((f) => typeof f === 'object' && f.type === 'presence' && f.clientId === 'dev-boot' && hub.frames.indexOf(f) >= since && f.status === 'online', 'online again')
  const r = await retainedPresence(t, urls.mqtt, 'dev-boot')
  t.match(JSON.parse(r.payload), { status: 'online' }, 'retained: online')
  const last = hub.json('presence').filter((f) => f.clientId === 'dev-boot').at(-1)
  t.equal(last?.status, 'online', 'the last presence frame says online')
})
