// Every door to every door: MQTT/TCP, MQTT/WS, /ws and POST /api/publish as senders,
// MQTT/TCP, MQTT/WS and /ws as receivers, on exact, + and # filters, with UTF-8 and
// binary payloads, each message exactly once per client. Then retained messages, the
// chat envelope both ways, overlapping subscriptions and $SYS from every door.
import t from 'tap'
import type { MqttClient, Packet } from 'mqtt'
import { openHub, openMqtt, startGateway, type HubClient, type HubFrame, type T } from '../helpers/gateway.js'

interface Got { topic: string, payload: Buffer, retain: boolean, qos: number }

/** Records what an MQTT.js client receives and waits on it. */
class MqttRecorder {
  readonly received: Got[] = []
  readonly #waiters = new Set<{ test: (m: Got) => boolean, resolve: (m: Got) => void }>()
  constructor (readonly client: MqttClient, readonly label: string) {
    client.on('message', (topic, payload, packet) => {
      const m = { topic, payload, retain: packet.retain, qos: packet.qos }
      this.received.push(m)
      for (const w of this.#waiters) if (w.test(m)) { this.#waiters.delete(w); w.resolve(m) }
    })
  }

  waitFor (test: (m: Got) => boolean, what: string, timeoutMs = 5000): Promise<Got> {
    const found = this.received.find(test)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w)
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms (${this.received.length} received: ${this.received.slice(-3).map((m) => m.topic).join(', ')})`))
      }, timeoutMs)
      const w = { test, resolve: (m: Got) => { clearTimeout(timer); resolve(m) } }
      this.#waiters.add(w)
    })
  }

  count (test: (m: Got) => boolean): number { return this.received.filter(test).length }
}

async function mqttClient (t: T, url: string, clientId: string, opts: Record<string, unknown> = {}): Promise<MqttRecorder> {
  return new MqttRecorder(await openMqtt(t, url, { clientId, ...opts }), clientId)
}

async function mqttSubscribe (r: MqttRecorder, filters: string[], qos: 0 | 1 = 0): Promise<void> {
  const granted = await r.client.subscribeAsync(filters, { qos })
  for (const g of granted) if (g.qos > 2) throw new Error(`${r.label}: ${g.topic} refused (${g.qos})`)
}

/** The bytes a /ws `message` frame carries. */
function frameBytes (f: HubFrame): Buffer {
  return f.encoding === 'base64' ? Buffer.from(f.payload, 'base64') : Buffer.from(f.payload, 'utf8')
}

async function httpPublish (http: string, body: Record<string, unknown>): Promise<{ status: number, json: any }> {
  const res = await fetch(`${http}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000)
  })
  return { status: res.status, json: await res.json() }
}

const UTF8 = 'héllo ✓ 温度 😀'
const binary = (i: number): Buffer => Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x41, 0x0a, i])
const isUtf8 = (b: Buffer): boolean => { try { new TextDecoder('utf-8', { fatal: true }).decode(b); return true } catch { return false } }

interface Sender {
  readonly name: string
  /** `via` a /ws receiver should see. */
  readonly via: string
  publish (topic: string, payload: Buffer, opts?: { retain?: boolean, qos?: 0 | 1 }): Promise<void>
}

interface Receiver {
  readonly name: string
  waitFor (topic: string, bytes: Buffer, what: string): Promise<{ via?: string, retain: boolean }>
  count (topic: string, bytes?: Buffer): number
}

function mqttSender (name: string, r: MqttRecorder): Sender {
  return {
    name,
    via: 'mqtt',
    async publish (topic, payload, opts = {}) { await r.client.publishAsync(topic, payload, { qos: opts.qos ?? 0, retain: opts.retain ?? false }) }
  }
}

function wsSender (name: string, c: HubClient): Sender {
  return {
    name,
    via: 'ws',
    async publish (topic, payload, opts = {}) {
      const binaryPayload = !isUtf8(payload)
      const answer = await c.request({
        type: 'publish',
        topic,
        payload: binaryPayload ? payload.toString('base64') : payload.toString('utf8'),
        ...(binaryPayload ? { encoding: 'base64' } : {}),
        qos: opts.qos ?? 0,
        retain: opts.retain ?? false
      })
      if (answer.type !== 'ack') throw new Error(`/ws publish ${topic}: ${JSON.stringify(answer)}`)
    }
  }
}

function httpSender (name: string, http: string): Sender {
  return {
    name,
    via: 'http',
    async publish (topic, payload, opts = {}) {
      const binaryPayload = !isUtf8(payload)
      const r = await httpPublish(http, {
        topic,
        payload: binaryPayload ? payload.toString('base64') : payload.toString('utf8'),
        ...(binaryPayload ? { encoding: 'base64' } : {}),
        qos: opts.qos ?? 0,
        retain: opts.retain ?? false
      })
      if (r.status !== 200) throw new Error(`POST /api/publish ${topic}: ${r.status} ${JSON.stringify(r.json)}`)
    }
  }
}

function mqttReceiver (name: string, r: MqttRecorder): Receiver {
  const match = (topic: string, bytes?: Buffer) => (m: Got) => m.topic === topic && (!bytes || m.payload.equals(bytes))
  return {
    name,
    async waitFor (topic, bytes, what) {
      const m = await r.waitFor(match(topic, bytes), what)
      return { retain: m.retain }
    },
    count: (topic, bytes) => r.count(match(topic, bytes))
  }
}

function wsReceiver (name: string, c: HubClient): Receiver {
  const match = (topic: string, bytes?: Buffer) => (f: HubFrame | string) =>
    typeof f === 'object' && f.type === 'message' && f.topic === topic && (!bytes || frameBytes(f).equals(bytes))
  return {
    name,
    async waitFor (topic, bytes, what) {
      const f = await c.waitFor<HubFrame>(match(topic, bytes), what)
      // A UTF-8 payload comes as text; anything else as base64, marked so.
      if (isUtf8(bytes)) {
        if (f.encoding !== undefined && f.encoding !== 'utf8') throw new Error(`${name}: UTF-8 payload on ${topic} came with encoding ${f.encoding}`)
      } else if (f.encoding !== 'base64') {
        throw new Error(`${name}: binary payload on ${topic} came without encoding base64: ${JSON.stringify(f)}`)
      }
      return { via: f.via, retain: f.retain }
    },
    count: (topic, bytes) => c.frames.filter(match(topic, bytes)).length
  }
}

t.test('every sender door reaches every receiver door on exact, + and # filters', async (t) => {
  const { urls } = await startGateway(t)
  const senderTopics = ['tcp', 'mws', 'ws', 'http']
  const exactFilters = [...senderTopics.map((s) => `mx/${s}/v`), 'mx/fence/v']
  const filters = { exact: exactFilters, plus: ['mx/+/v'], hash: ['mx/#'] }

  const receivers: Receiver[] = []
  for (const [kind, list] of Object.entries(filters)) {
    const tcp = await mqttClient(t, urls.mqtt, `rx-tcp-${kind}`)
    await mqttSubscribe(tcp, list)
    receivers.push(mqttReceiver(`MQTT/TCP ${kind}`, tcp))
    const mws = await mqttClient(t, urls['mqtt-ws'], `rx-mws-${kind}`)
    await mqttSubscribe(mws, list)
    receivers.push(mqttReceiver(`MQTT/WS ${kind}`, mws))
    const ws = await openHub(t, urls.ws, { name: `rx-ws-${kind}` })
    for (const f of list) await ws.subscribe(f)
    receivers.push(wsReceiver(`/ws ${kind}`, ws))
  }

  const tcpTx = await mqttClient(t, urls.mqtt, 'tx-tcp')
  const mwsTx = await mqttClient(t, urls['mqtt-ws'], 'tx-mws')
  const wsTxClient = await openHub(t, urls.ws, { name: 'tx-ws' })
  // The /ws sender also listens, on overlapping filters: it gets its own messages once.
  await wsTxClient.subscribe('mx/ws/v')
  await wsTxClient.subscribe('mx/#')
  const senders: Sender[] = [
    mqttSender('tcp', tcpTx), mqttSender('mws', mwsTx), wsSender('ws', wsTxClient), httpSender('http', urls.http)
  ]

  for (const [i, s] of senders.entries()) {
    await s.publish(`mx/${s.name}/v`, Buffer.from(`${UTF8} from ${s.name}`))
    await s.publish(`mx/${s.name}/v`, binary(i))
    await s.publish(`mx/${s.name}/w`, Buffer.from(`not for exact or + (${s.name})`))
  }
  // Everything published before the fence reaches a client before the fence does.
  const fence = Buffer.from('fence')
  await senders[0]!.publish('mx/fence/v', fence)

  for (const r of receivers) {
    await r.waitFor('mx/fence/v', fence, `${r.name}: the fence`)
    for (const [i, s] of senders.entries()) {
      const text = Buffer.from(`${UTF8} from ${s.name}`)
      const got = await r.waitFor(`mx/${s.name}/v`, text, `${r.name}: UTF-8 from ${s.name}`)
      if (got.via !== undefined) t.equal(got.via, s.via, `${r.name}: via of ${s.name}`)
      await r.waitFor(`mx/${s.name}/v`, binary(i), `${r.name}: binary from ${s.name}`)
      t.equal(r.count(`mx/${s.name}/v`, text), 1, `${s.name} -> ${r.name}: UTF-8 exactly once`)
      t.equal(r.count(`mx/${s.name}/v`, binary(i)), 1, `${s.name} -> ${r.name}: binary exactly once, byte for byte`)
      const other = r.count(`mx/${s.name}/w`)
      t.equal(other, r.name.endsWith('hash') ? 1 : 0, `${s.name} -> ${r.name}: mx/${s.name}/w ${r.name.endsWith('hash') ? 'once' : 'not delivered'}`)
    }
    t.equal(r.count('mx/fence/v'), 1, `${r.name}: fence once`)
  }

  const self = wsReceiver('/ws sender', wsTxClient)
  await self.waitFor('mx/fence/v', fence, 'the /ws sender: the fence')
  t.equal(self.count('mx/ws/v', Buffer.from(`${UTF8} from ws`)), 1, 'the /ws sender sees its own UTF-8 message once (mx/ws/v + mx/#)')
  t.equal(self.count('mx/ws/v', binary(2)), 1, 'the /ws sender sees its own binary message once')
})

t.test('a binary payload: base64 at /ws, byte-exact over MQTT both ways', async (t) => {
  const { urls } = await startGateway(t)
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const ws = await openHub(t, urls.ws, { name: 'bin' })
  await ws.subscribe('bin/in')
  const m = await mqttClient(t, urls.mqtt, 'bin-mqtt')
  await mqttSubscribe(m, ['bin/out'])
  await m.client.publishAsync('bin/in', bytes)
  const got = await ws.waitMessage('bin/in')
  t.equal(got.encoding, 'base64')
  t.equal(got.payload, bytes.toString('base64'), 'payload is the standard base64 of the bytes')
  const ack = await ws.request({ type: 'publish', topic: 'bin/out', payload: got.payload, encoding: 'base64' })
  t.equal(ack.type, 'ack')
  const out = await m.waitFor((x) => x.topic === 'bin/out', 'bin/out')
  t.ok(out.payload.equals(bytes), 'all 256 byte values arrive unchanged')
  const empty = await ws.request({ type: 'publish', topic: 'bin/out', payload: '', encoding: 'base64' })
  t.equal(empty.type, 'ack', 'an empty base64 payload is fine')
  await m.waitFor((x) => x.topic === 'bin/out' && x.payload.length === 0, 'the empty message')
})

t.test('retained messages from every door reach late subscribers of every door', async (t) => {
  const { urls } = await startGateway(t)
  const tcpTx = await mqttClient(t, urls.mqtt, 'ret-tcp')
  const mwsTx = await mqttClient(t, urls['mqtt-ws'], 'ret-mws')
  const wsTx = await openHub(t, urls.ws, { name: 'ret-ws' })
  const senders = [mqttSender('tcp', tcpTx), mqttSender('mws', mwsTx), wsSender('ws', wsTx), httpSender('http', urls.http)]
  for (const s of senders) await s.publish(`rt/${s.name}/state`, Buffer.from(`on-${s.name}`), { retain: true, qos: 1 })
  await senders[0]!.publish('rt/bin/state', binary(7), { retain: true, qos: 1 })

  const late: Receiver[] = []
  for (const [kind, filter] of [['wild', 'rt/+/state'], ['hash', 'rt/#']] as const) {
    const tcp = await mqttClient(t, urls.mqtt, `late-tcp-${kind}`)
    await mqttSubscribe(tcp, [filter])
    late.push(mqttReceiver(`MQTT/TCP ${filter}`, tcp))
    const mws = await mqttClient(t, urls['mqtt-ws'], `late-mws-${kind}`)
    await mqttSubscribe(mws, [filter])
    late.push(mqttReceiver(`MQTT/WS ${filter}`, mws))
    const ws = await openHub(t, urls.ws, { name: `late-ws-${kind}` })
    await ws.subscribe(filter)
    late.push(wsReceiver(`/ws ${filter}`, ws))
  }
  for (const r of late) {
    for (const s of senders) {
      const got = await r.waitFor(`rt/${s.name}/state`, Buffer.from(`on-${s.name}`), `${r.name}: retained from ${s.name}`)
      t.equal(got.retain, true, `${s.name} -> ${r.name}: marked retained`)
    }
    const bin = await r.waitFor('rt/bin/state', binary(7), `${r.name}: retained binary`)
    t.equal(bin.retain, true, `${r.name}: binary retained`)
  }

  const exact = await openHub(t, urls.ws, { name: 'late-exact' })
  await exact.subscribe('rt/http/state')
  const m = await exact.waitMessage('rt/http/state')
  t.match(m, { payload: 'on-http', retain: true, via: 'http' }, 'an exact /ws filter gets the retained message with its origin')

  // A live message after the subscription is not marked retained, even when published with retain.
  await senders[0]!.publish('rt/tcp/state', Buffer.from('on-again'), { retain: true })
  const live = await exact.subscribe('rt/tcp/state').then(() => exact.waitMessage('rt/tcp/state'))
  t.equal(live.payload, 'on-again', 'the latest retained value replaces the earlier one')

  // Clearing: an empty retained publish removes it for later subscribers.
  await senders[0]!.publish('rt/tcp/state', Buffer.alloc(0), { retain: true, qos: 1 })
  const after = await mqttClient(t, urls.mqtt, 'late-after-clear')
  await mqttSubscribe(after, ['rt/tcp/state', 'rt/mws/state'])
  await after.waitFor((x) => x.topic === 'rt/mws/state', 'the other retained message')
  t.equal(after.count((x) => x.topic === 'rt/tcp/state' && x.payload.length > 0), 0, 'the cleared retained message is gone')
})

t.test('QoS 1 from /ws and HTTP reaches a QoS 1 MQTT subscriber at QoS 1', async (t) => {
  const { urls } = await startGateway(t)
  const sub = await mqttClient(t, urls.mqtt, 'q1-sub')
  await mqttSubscribe(sub, ['q1/#'], 1)
  const ws = await openHub(t, urls.ws, { name: 'q1' })
  await wsSender('ws', ws).publish('q1/ws', Buffer.from('a'), { qos: 1 })
  await httpSender('http', urls.http).publish('q1/http', Buffer.from('b'), { qos: 1 })
  t.equal((await sub.waitFor((x) => x.topic === 'q1/ws', 'q1/ws')).qos, 1, '/ws publish qos 1')
  t.equal((await sub.waitFor((x) => x.topic === 'q1/http', 'q1/http')).qos, 1, 'HTTP publish qos 1')
})

t.test('exactly once per client with overlapping filters', async (t) => {
  const { urls } = await startGateway(t)

  t.test('a /ws client on chat/x, chat/+ and # gets one copy', async (t) => {
    const c = await openHub(t, urls.ws, { name: 'ov', room: 'x' })
    await c.waitJson('history')
    await c.subscribe('chat/x') // already its room
    await c.subscribe('chat/+')
    await c.subscribe('#')
    const m = await mqttClient(t, urls.mqtt, 'ov-pub')
    await m.client.publishAsync('chat/x', 'from mqtt')
    c.send({ type: 'chat', text: 'own line' })
    await c.waitMessage('chat/x', (f) => f.payload === 'own line')
    await m.client.publishAsync('zz/fence', 'f')
    await c.waitMessage('zz/fence')
    const copies = (text: string): number => c.json('message').filter((f) => f.topic === 'chat/x' && f.payload === text).length
    t.equal(copies('from mqtt'), 1, 'an MQTT message once')
    t.equal(copies('own line'), 1, 'its own chat once')
  })

  t.test('an MQTT client with overlapping subscriptions follows MQTT semantics', async (t) => {
    const sub = await mqttClient(t, urls.mqtt, 'ov-mqtt')
    await sub.client.subscribeAsync({ 'ov/a': { qos: 0 }, 'ov/+': { qos: 1 }, 'ov/#': { qos: 0 } })
    const ws = await openHub(t, urls.ws, { name: 'ov-tx' })
    await wsSender('ws', ws).publish('ov/a', Buffer.from('q1'), { qos: 1 })
    await wsSender('ws', ws).publish('ov/fence', Buffer.from('f'))
    await sub.waitFor((x) => x.topic === 'ov/fence', 'the fence')
    const copies = sub.received.filter((x) => x.topic === 'ov/a')
    // [MQTT-3.3.5-1] at least one copy; the server MAY send one per matching subscription.
    t.ok(copies.length >= 1 && copies.length <= 3, `1 to 3 copies (got ${copies.length})`)
    t.ok(copies.every((x) => x.payload.toString() === 'q1'), 'each copy intact')
    // [MQTT-3.3.5-1] also says "respecting the maximum QoS of all the matching subscriptions".
    // Stock Aedes 1.2 gave QoS 0 here (moscajs/aedes#1074); src/engine/overlap-qos.ts fixes it.
    t.same(copies.map((x) => x.qos), [1], 'one copy, at the highest granted QoS, 1, though the exact-topic subscription is QoS 0')
  })

  for (const door of ['mqtt', 'mqtt-ws'] as const) {
    t.test(`${door}: a delivery's QoS is min(published, highest granted of the matching subscriptions)`, async (t) => {
      const sub = await mqttClient(t, urls[door], `g-sub-${door}`)
      const pub = await mqttClient(t, urls.mqtt, `g-pub-${door}`)
      const base = `granted/${door}`
      // A QoS 1 wildcard subscription gets a QoS 2 publish at QoS 1 (MQTT 3.1.1 section 3.8.4).
      await sub.client.subscribeAsync({ [`${base}/w/+`]: { qos: 1 } })
      await pub.client.publishAsync(`${base}/w/x`, 'q2', { qos: 2 })
      t.equal((await sub.waitFor((m) => m.topic === `${base}/w/x`, 'the QoS 2 publish')).qos, 1, 'QoS 2 through a QoS 1 wildcard arrives at QoS 1')
      // Overlap with QoS 2 the highest (the Paho interoperability case): one copy at QoS 2.
      await sub.client.subscribeAsync({ [`${base}/p/#`]: { qos: 2 }, [`${base}/p/+`]: { qos: 1 } })
      await pub.client.publishAsync(`${base}/p/a`, 'p2', { qos: 2 })
      await pub.client.publishAsync(`${base}/p/a`, 'p1', { qos: 1 })
      await pub.client.publishAsync(`${base}/p/a`, 'p0', { qos: 0 })
      await sub.waitFor((m) => m.payload.toString() === 'p0', 'the QoS 0 publish')
      const p = sub.received.filter((m) => m.topic === `${base}/p/a`).map((m) => `${m.payload.toString()}:${m.qos}`)
      t.same(p, ['p2:2', 'p1:1', 'p0:0'], 'each publish once, at min(its QoS, 2)')
      // A retained QoS 1 message, then a QoS 0 wildcard subscription: it arrives at QoS 0.
      await pub.client.publishAsync(`${base}/r/x`, 'kept', { qos: 1, retain: true })
      await sub.client.subscribeAsync({ [`${base}/r/#`]: { qos: 0 } })
      const r = await sub.waitFor((m) => m.topic === `${base}/r/x`, 'the retained message')
      t.same([r.retain, r.qos], [true, 0], 'a retained QoS 1 message through a QoS 0 wildcard arrives at QoS 0, retained')
      await pub.client.publishAsync(`${base}/r/x`, '', { qos: 1, retain: true })
      // Dropping the higher subscription lowers the QoS again.
      await sub.client.unsubscribeAsync(`${base}/p/#`)
      await pub.client.publishAsync(`${base}/p/a`, 'after', { qos: 2 })
      t.equal((await sub.waitFor((m) => m.payload.toString() === 'after', 'the publish after unsubscribe')).qos, 1, 'after UNSUBSCRIBE of the QoS 2 filter, QoS 1')
    })
  }

  for (const store of ['memory', 'disk'] as const) {
    t.test(`a persistent session with overlapping subscriptions gets its queued messages once, at the granted QoS (${store} store)`, async (t) => {
      const u = store === 'disk' ? (await startGateway(t, { disk: true })).urls : urls
      const id = `g-persist-${store}`
      const first = await mqttClient(t, u.mqtt, id, { clean: false })
      await first.client.subscribeAsync({ 'gp/a': { qos: 0 }, 'gp/+': { qos: 1 }, 'gp/#': { qos: 1 } })
      await first.client.endAsync()
      const pub = await mqttClient(t, u.mqtt, 'g-persist-pub')
      for (let i = 0; i < 5; i++) await pub.client.publishAsync('gp/a', `q${i}`, { qos: 1 })
      await pub.client.publishAsync('gp/a', 'sent at 2', { qos: 2 })
      const back = await mqttClient(t, u.mqtt, id, { clean: false })
      await back.waitFor((m) => m.payload.toString() === 'sent at 2', 'the last queued message')
      await pub.client.publishAsync('gp/a', 'live', { qos: 1 })
      await back.waitFor((m) => m.payload.toString() === 'live', 'a live message')
      const got = back.received.filter((m) => m.topic === 'gp/a').map((m) => `${m.payload.toString()}:${m.qos}`)
      t.same(got, ['q0:1', 'q1:1', 'q2:1', 'q3:1', 'q4:1', 'sent at 2:1', 'live:1'], 'queued and live, each once, at QoS 1 (a QoS 2 publish too: min(2, granted 1))')
      await back.client.endAsync()
    })
  }
})

t.test('the chat envelope both ways', async (t) => {
  const { urls } = await startGateway(t)
  const room = 'env'
  const tcp = await mqttClient(t, urls.mqtt, 'env-tcp')
  await mqttSubscribe(tcp, [`chat/${room}`])
  const mws = await mqttClient(t, urls['mqtt-ws'], 'env-mws')
  await mqttSubscribe(mws, [`chat/${room}`])
  const alice = await openHub(t, urls.ws, { name: 'alice', room })
  const text = await openHub(t, urls.ws, { name: 'reader', room, format: 'text' })
  await alice.waitJson('history')

  t.test('a /ws chat arrives at MQTT as {"from","text","ts","via":"ws"}', async (t) => {
    const before = Date.now()
    alice.send({ type: 'chat', text: 'hi mqtt' })
    for (const r of [tcp, mws]) {
      const got = await r.waitFor((x) => x.payload.includes('hi mqtt'), `${r.label}: the envelope`)
      const env = JSON.parse(got.payload.toString('utf8'))
      t.same(Object.keys(env).sort(), ['from', 'text', 'ts', 'via'], `${r.label}: exactly the envelope keys`)
      t.match(env, { from: 'alice', text: 'hi mqtt', via: 'ws' })
      t.ok(env.ts >= before && env.ts <= Date.now(), `${r.label}: ts is epoch ms`)
    }
    const live = await alice.waitMessage(`chat/${room}`, (f) => f.payload === 'hi mqtt')
    const env = JSON.parse((await tcp.waitFor((x) => x.payload.includes('hi mqtt'), 'again')).payload.toString())
    t.equal(live.ts, env.ts, 'the /ws message and the MQTT envelope carry the same ts')
    t.equal(live.from, 'alice')
    t.equal(live.via, 'ws')
  })

  t.test('a /ws publish to a chat topic is wrapped too', async (t) => {
    const a = await alice.request({ type: 'publish', topic: `chat/${room}`, payload: 'wrapped' })
    t.equal(a.type, 'ack')
    const got = await tcp.waitFor((x) => x.payload.includes('wrapped'), 'the wrapped publish')
    t.match(JSON.parse(got.payload.toString()), { from: 'alice', text: 'wrapped', via: 'ws' })
  })

  t.test('a plain MQTT payload is the text, from the client id (or username), via mqtt', async (t) => {
    await tcp.client.publishAsync(`chat/${room}`, 'plain from tcp')
    const m1 = await alice.waitMessage(`chat/${room}`, (f) => f.payload === 'plain from tcp')
    t.match(m1, { from: 'env-tcp', via: 'mqtt', type: 'message' })
    t.equal(m1.encoding, undefined, 'a chat text has no encoding')
    await mws.client.publishAsync(`chat/${room}`, 'plain from mqtt-ws')
    t.match(await alice.waitMessage(`chat/${room}`, (f) => f.payload === 'plain from mqtt-ws'), { from: 'env-mws', via: 'mqtt' })
    const named = await mqttClient(t, urls.mqtt, 'env-user', { username: 'carol', password: 'x' })
    await named.client.publishAsync(`chat/${room}`, 'with a username')
    t.match(await alice.waitMessage(`chat/${room}`, (f) => f.payload === 'with a username'), { from: 'carol', via: 'mqtt' })
    await text.waitFor((f) => f === 'env-tcp: plain from tcp', 'the text line of the MQTT chat')
  })

  t.test('an MQTT JSON payload with a string text is read as an envelope; the sender is the proved one, a different from is only a claim', async (t) => {
    await tcp.client.publishAsync(`chat/${room}`, JSON.stringify({ from: 'sensor-9', text: 'json text', via: 'ws', ts: 1e20 }))
    const got = await alice.waitMessage(`chat/${room}`, (f) => f.payload === 'json text')
    t.match(got, { from: 'env-tcp', claimedFrom: 'sensor-9', via: 'mqtt' })
    t.ok(Math.abs((got.ts as number) - Date.now()) < 60_000, 'ts is the gateway clock, not the 1e20 the client wrote')
    await tcp.client.publishAsync(`chat/${room}`, JSON.stringify({ text: 'no from' }))
    t.match(await alice.waitMessage(`chat/${room}`, (f) => f.payload === 'no from'), { from: 'env-tcp', via: 'mqtt' })
    const notEnv = JSON.stringify({ msg: 'no text key' })
    await tcp.client.publishAsync(`chat/${room}`, notEnv)
    t.match(await alice.waitMessage(`chat/${room}`, (f) => f.payload === notEnv), { from: 'env-tcp' }, 'JSON without text is the text itself')
  })

  t.test('an HTTP publish to a chat topic is an envelope via http', async (t) => {
    const r = await httpPublish(urls.http, { topic: `chat/${room}`, payload: 'from curl' })
    t.equal(r.status, 200)
    t.match(await alice.waitMessage(`chat/${room}`, (f) => f.payload === 'from curl'), { via: 'http' })
    const got = await tcp.waitFor((x) => x.payload.includes('from curl'), 'the HTTP envelope')
    t.match(JSON.parse(got.payload.toString()), { text: 'from curl', via: 'http' })
  })
})

t.test('$SYS/... is read-only from every door', async (t) => {
  const { urls } = await startGateway(t)
  const watcher = await mqttClient(t, urls.mqtt, 'sys-watch')
  await mqttSubscribe(watcher, ['$SYS/fusion-test/#', 'sys/fence'])

  const ws = await openHub(t, urls.ws, { name: 'sys' })
  const answer = await ws.request({ type: 'publish', topic: '$SYS/fusion-test/x', payload: 'x' })
  t.match(answer, { type: 'error', code: 'ACL_DENIED' }, '/ws: an ACL_DENIED error frame')
  t.ok(typeof answer.message === 'string' && answer.message.length > 0, '/ws: with a message')
  t.equal((await ws.request({ type: 'ping' })).type, 'pong', '/ws: the connection stays usable')

  const http = await httpPublish(urls.http, { topic: '$SYS/fusion-test/x', payload: 'x' })
  t.equal(http.status, 403, 'HTTP: 403')
  t.match(http.json, { statusCode: 403, code: 'ACL_DENIED' }, 'HTTP: the error body')

  for (const [door, url] of [['MQTT/TCP', urls.mqtt], ['MQTT/WS', urls['mqtt-ws']]] as const) {
    const pub = await mqttClient(t, url, `sys-pub-${door.slice(5).toLowerCase()}`)
    // --deny-action ignore (the default): acknowledged and dropped, the connection stays.
    await pub.client.publishAsync('$SYS/fusion-test/x', 'x', { qos: 1 })
    t.ok(pub.client.connected, `${door}: the publish is acknowledged and dropped; the publisher stays connected`)
  }
  const strict = await startGateway(t, { denyAction: 'disconnect' })
  const pub = await mqttClient(t, strict.urls.mqtt, 'sys-pub-strict')
  let timer: NodeJS.Timeout | undefined
  const closed = await new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), 5000)
    pub.client.once('close', () => resolve(true))
    pub.client.publish('$SYS/fusion-test/x', 'x')
  })
  clearTimeout(timer)
  t.ok(closed, 'with --deny-action disconnect the broker disconnects the publisher')

  await mqttSender('tcp', watcher).publish('sys/fence', Buffer.from('f'))
  await watcher.waitFor((x) => x.topic === 'sys/fence', 'the fence')
  t.equal(watcher.count((x) => x.topic.startsWith('$SYS/fusion-test')), 0, 'no $SYS message from a client reached a $SYS subscriber')
})

t.test('MQTT doors: a publish over a limit ends the connection; a refused filter is SUBACK 0x80', async (t) => {
  const { urls } = await startGateway(t, { maxPayload: 1024, maxTopicLength: 64, maxTopicLevels: 5 })
  const watcher = await mqttClient(t, urls.mqtt, 'lim-watch')
  await mqttSubscribe(watcher, ['#'])
  const cases: Array<[string, string, Buffer]> = [
    ['a payload over maxPayload', 'lim/big', Buffer.alloc(2048, 1)],
    ['a topic over maxTopicLength', `lim/${'l'.repeat(80)}`, Buffer.from('x')],
    ['a topic deeper than maxTopicLevels', 'lim/a/b/c/d/e', Buffer.from('x')]
  ]
  for (const [what, topic, payload] of cases) {
    const pub = await mqttClient(t, urls.mqtt, `lim-${cases.findIndex((c) => c[0] === what)}`)
    let timer: NodeJS.Timeout | undefined
    const closed = await new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), 5000)
      pub.client.once('close', () => resolve(true))
      pub.client.publish(topic, payload, { qos: 1 })
    })
    clearTimeout(timer)
    t.ok(closed, `${what}: the publisher is disconnected`)
  }
  const sub = await mqttClient(t, urls.mqtt, 'lim-sub')
  // MQTT.js turns a 0x80 into an error: read the SUBACK itself.
  const suback = new Promise<number[]>((resolve) => {
    const on = (p: Packet): void => { if (p.cmd === 'suback') { sub.client.off('packetreceive', on); resolve(p.granted as number[]) } }
    sub.client.on('packetreceive', on)
  })
  sub.client.subscribe([`lim/${'f'.repeat(80)}`, 'lim/a/b/c/d/e/#', 'lim/ok'], () => {})
  t.same(await suback, [128, 128, 0], 'too long and too deep filters get 0x80, the good one 0')
  t.ok(sub.client.connected, 'the subscriber stays connected')
  await mqttSender('tcp', sub).publish('lim/ok', Buffer.from('fine'))
  await watcher.waitFor((x) => x.topic === 'lim/ok', 'lim/ok')
  t.equal(watcher.count((x) => x.topic.startsWith('lim/') && x.topic !== 'lim/ok'), 0, 'nothing over a limit was delivered')
})

t.test('a payload limit raised above the default applies to every door', async (t) => {
  const { urls } = await startGateway(t, { maxPayload: 512 * 1024 })
  const ws = await openHub(t, urls.ws, { name: 'bigrx' })
  await ws.subscribe('huge/#')
  const big = Buffer.alloc(400 * 1024, 0x61)
  const tcp = await mqttClient(t, urls.mqtt, 'huge-tcp')
  await tcp.client.publishAsync('huge/tcp', big, { qos: 1 })
  t.equal((await ws.waitMessage('huge/tcp')).payload.length, big.length, 'MQTT/TCP: 400 KiB under a 512 KiB limit')
  const mws = await mqttClient(t, urls['mqtt-ws'], 'huge-mws')
  await mws.client.publishAsync('huge/mws', big, { qos: 1 })
  t.equal((await ws.waitMessage('huge/mws')).payload.length, big.length, 'MQTT/WS too')
  const a = await ws.request({ type: 'publish', topic: 'huge/ws', payload: big.toString() })
  t.equal(a.type, 'ack', '/ws too')
})
