// The /ws hub as a user sees it (welcome/history order, presence, format=text, ping,
// error frames), the upgrade router, and the HTTP API (health, stats, history,
// publish errors, metrics), all against a real gateway on port 0.
import t from 'tap'
import WebSocket from 'ws'
import type { MqttClient } from 'mqtt'
import { openHub, openMqtt, startGateway, type HubClient, type HubFrame } from '../helpers/gateway.js'

async function http (url: string, init: RequestInit = {}): Promise<{ status: number, type: string, text: string, json: any }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch {}
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json }
}

const post = (url: string, body: string, type = 'application/json'): ReturnType<typeof http> =>
  http(url, { method: 'POST', headers: { 'content-type': type }, body })

/** Resolves with the HTTP status of a refused upgrade, or 'open' / 'error'. */
function attemptUpgrade (url: string, protocols?: string[]): Promise<number | 'open' | 'error'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { handshakeTimeout: 4000 })
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode ?? 0); req.destroy() })
    ws.on('open', () => { resolve('open'); ws.terminate() })
    ws.on('error', () => resolve('error'))
  })
}

function nextMessage (client: MqttClient, topic: string, timeoutMs = 5000): Promise<{ payload: Buffer, retain: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.off('message', on); reject(new Error(`no message on ${topic}`)) }, timeoutMs)
    const on = (tp: string, payload: Buffer, packet: { retain: boolean }): void => {
      if (tp !== topic) return
      clearTimeout(timer)
      client.off('message', on)
      resolve({ payload, retain: packet.retain })
    }
    client.on('message', on)
  })
}

const presenceOf = (c: HubClient, clientId: string, status: string): Promise<HubFrame> =>
  c.waitJson('presence', (f) => f.clientId === clientId && f.status === status)

t.test('welcome, then history, then live frames', async (t) => {
  const { urls } = await startGateway(t)
  const room = 'order'
  const writer = await openHub(t, urls.ws, { name: 'writer', room })
  await writer.waitJson('history')
  const mqtt = await openMqtt(t, urls.mqtt, { clientId: 'order-dev' })
  for (const text of ['one', 'two']) {
    const a = await writer.request({ type: 'chat', text })
    t.equal(a.type, 'ack')
  }
  await mqtt.publishAsync(`chat/${room}`, 'three', { qos: 1 })
  await writer.waitMessage(`chat/${room}`, (f) => f.payload === 'three')
  const r = await post(`${urls.http}/api/publish`, JSON.stringify({ topic: `chat/${room}`, payload: 'four' }))
  t.equal(r.status, 200)
  await writer.waitMessage(`chat/${room}`, (f) => f.payload === 'four')

  const late = await openHub(t, urls.ws, { name: 'late', room })
  await late.waitFor(() => late.frames.length >= 2, 'two frames')
  const [welcome, history] = late.frames as HubFrame[]
  t.match(welcome, { type: 'welcome', name: 'late', room, server: /^mqtt-fusion/ }, 'first frame: welcome')
  t.match(welcome!.clientId, /\S/, 'with a clientId')
  t.match(history, { type: 'history', topic: `chat/${room}` }, 'second frame: history')
  const msgs = history!.messages as HubFrame[]
  t.same(msgs.map((m) => m.payload), ['one', 'two', 'three', 'four'], 'history oldest first')
  t.same(msgs.map((m) => m.via), ['ws', 'ws', 'mqtt', 'http'], 'with each via')
  t.same(msgs.map((m) => m.from), ['writer', 'writer', 'order-dev', 'http'], 'and each sender')
  for (const m of msgs) {
    t.equal(m.topic, `chat/${room}`)
    t.ok(Number.isFinite(m.ts), 'ts is a number')
  }
  const live = writer.json('message').filter((f) => f.topic === `chat/${room}`)
  t.same(msgs.map((m) => m.ts), live.map((f) => f.ts), 'history keeps the ts the live frames had')
  // Nothing but presence frames may come before the first live message for the late client.
  writer.send({ type: 'chat', text: 'five' })
  await late.waitMessage(`chat/${room}`, (f) => f.payload === 'five')
  t.equal(late.json('message').filter((f) => f.payload === 'four').length, 0, 'history is not repeated as live messages')
  t.notOk(late.frames.slice(0, 2).some((f) => typeof f === 'object' && f.type === 'presence'), 'presence comes after history')
})

t.test('frames sent at once on open are answered after welcome and history', async (t) => {
  const { urls } = await startGateway(t, { disk: true })
  const pub = await openHub(t, urls.ws, { name: 'pub' })
  await pub.waitJson('history')
  for (let i = 0; i < 4; i++) {
    const ws = new WebSocket(`${urls.ws}?name=eager${i}&room=eager${i}`)
    const types: string[] = []
    ws.on('message', (d) => { const f = JSON.parse(d.toString()); types.push(f.type === 'message' ? `message:${f.topic}` : f.id ? `${f.type}:${f.id}` : f.type) })
    t.teardown(() => ws.terminate())
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    ws.send(JSON.stringify({ type: 'ping', id: 'p' }))
    ws.send(JSON.stringify({ type: 'subscribe', topic: `eager/${i}`, id: 's' }))
    ws.send(JSON.stringify({ type: 'nope', id: 'e' }))
    ws.send(JSON.stringify({ type: 'chat', text: 'first words', id: 'c' }))
    const answers = ['pong:p', 'ack:s', 'error:e', 'ack:c', `message:chat/eager${i}`]
    await new Promise<void>((resolve) => ws.on('message', () => { if (answers.every((a) => types.includes(a))) resolve() }))
    t.same(types.slice(0, 2), ['welcome', 'history'], `connection ${i}: welcome and history come first (${types.join(', ')})`)
    const rest = types.filter((x) => x !== 'presence')
    t.equal(rest.length, new Set(rest).size, `connection ${i}: nothing twice`)
    ws.close()
  }
})

t.test('history is capped at the configured limit and the HTTP history agrees', async (t) => {
  const { urls } = await startGateway(t, { historyLimit: 3 })
  const c = await openHub(t, urls.ws, { name: 'h', room: 'cap' })
  await c.waitJson('history')
  for (let i = 1; i <= 5; i++) await c.request({ type: 'chat', text: `m${i}` })
  const late = await openHub(t, urls.ws, { name: 'h2', room: 'cap' })
  const h = await late.waitJson('history')
  t.same(h.messages.map((m: HubFrame) => m.payload), ['m3', 'm4', 'm5'], 'the last 3, oldest first')
  const api = await http(`${urls.http}/api/history?topic=${encodeURIComponent('chat/cap')}&limit=2`)
  t.equal(api.status, 200)
  t.match(api.type, /json/)
  const list = Array.isArray(api.json) ? api.json : api.json.messages
  t.same(list.map((m: HubFrame) => m.payload), ['m4', 'm5'], '/api/history?limit=2: the last 2, oldest first')
  t.match(list[0], { topic: 'chat/cap', from: 'h', via: 'ws' })
  const bad = await http(`${urls.http}/api/history?topic=${encodeURIComponent('chat/+')}`)
  t.equal(bad.status, 400, 'a wildcard topic is a 400')
  t.match(bad.json, { statusCode: 400, code: 'BAD_TOPIC' })
  const badLimit = await http(`${urls.http}/api/history?topic=chat%2Fcap&limit=abc`)
  t.equal(badLimit.status, 400, 'a bad limit is a 400')
})

t.test('presence: frames to /ws clients and retained presence/<clientId> for every door', async (t) => {
  const { urls } = await startGateway(t)
  const watcher = await openHub(t, urls.ws, { name: 'watcher' })
  const welcome = await watcher.waitJson('welcome')
  await watcher.waitJson('history')
  const mqtt = await openMqtt(t, urls.mqtt, { clientId: 'pres-watch' })
  await mqtt.subscribeAsync('presence/+')

  t.test('a /ws client: online on connect, offline on close', async (t) => {
    const bob = await openHub(t, urls.ws, { name: 'bob' })
    const id = (await bob.waitJson('welcome')).clientId as string
    const online = await presenceOf(watcher, id, 'online')
    t.match(online, { type: 'presence', clientId: id, name: 'bob', status: 'online', via: 'ws' })
    t.ok(Number.isFinite(online.ts), 'ts')
    const retained = JSON.parse((await (async () => {
      const late = await openMqtt(t, urls.mqtt, { clientId: 'pres-late-1' })
      const got = nextMessage(late, `presence/${id}`)
      await late.subscribeAsync(`presence/${id}`)
      const m = await got
      t.equal(m.retain, true, 'presence/<clientId> is retained')
      return m.payload
    })()).toString())
    t.match(retained, { status: 'online', name: 'bob', via: 'ws' })
    t.ok(Number.isFinite(retained.ts))

    const offlineMqtt = nextMessage(mqtt, `presence/${id}`)
    await bob.close()
    t.match(await presenceOf(watcher, id, 'offline'), { name: 'bob', via: 'ws' })
    t.match(JSON.parse((await offlineMqtt).payload.toString()), { status: 'offline', name: 'bob', via: 'ws' })
    const later = await openMqtt(t, urls.mqtt, { clientId: 'pres-late-2' })
    const got = nextMessage(later, `presence/${id}`)
    await later.subscribeAsync(`presence/${id}`)
    t.match(JSON.parse((await got).payload.toString()), { status: 'offline' }, 'a later subscriber sees the retained offline')
  })

  t.test('an MQTT client: online on connect, offline on disconnect, named by its username when it has one', async (t) => {
    for (const [door, url] of [['tcp', urls.mqtt], ['ws', urls['mqtt-ws']]] as const) {
      const dev = await openMqtt(t, url, { clientId: `dev-${door}` })
      t.match(await presenceOf(watcher, `dev-${door}`, 'online'), { name: `dev-${door}`, via: 'mqtt' }, `MQTT/${door} online`)
      await dev.endAsync()
      t.match(await presenceOf(watcher, `dev-${door}`, 'offline'), { via: 'mqtt' }, `MQTT/${door} offline`)
    }
    const named = await openMqtt(t, urls.mqtt, { clientId: 'dev-named', username: 'dora', password: 'x' })
    t.match(await presenceOf(watcher, 'dev-named', 'online'), { name: 'dora' })
    named.stream.destroy() // a dead socket, not a clean DISCONNECT
    await presenceOf(watcher, 'dev-named', 'offline')
  })

  t.test('a newcomer is told who is online after its history', async (t) => {
    const dev = await openMqtt(t, urls.mqtt, { clientId: 'dev-present' })
    await presenceOf(watcher, 'dev-present', 'online')
    const c = await openHub(t, urls.ws, { name: 'newcomer' })
    const p = await presenceOf(c, welcome.clientId, 'online')
    t.equal(p.name, 'watcher')
    await presenceOf(c, 'dev-present', 'online')
    const firstPresence = c.frames.findIndex((f) => typeof f === 'object' && f.type === 'presence')
    const historyAt = c.frames.findIndex((f) => typeof f === 'object' && f.type === 'history')
    t.ok(historyAt >= 0 && historyAt < firstPresence, 'history first, presence after')
    await dev.endAsync()
  })

  t.test('nobody can mark someone else offline', async (t) => {
    const a = await watcher.request({ type: 'publish', topic: 'presence/dev-present', payload: 'offline', retain: true })
    t.match(a, { type: 'error', code: 'ACL_DENIED' })
    const r = await post(`${urls.http}/api/publish`, JSON.stringify({ topic: `presence/${welcome.clientId}`, payload: 'offline' }))
    t.equal(r.status, 403)
  })
})

t.test('format=text: `name: text` lines and nothing else', async (t) => {
  const { urls } = await startGateway(t)
  const room = 'txt'
  const alice = await openHub(t, urls.ws, { name: 'alice', room, format: 'text' })
  const bob = await openHub(t, urls.ws, { name: 'bob', room })
  await bob.waitJson('history')
  alice.send('hello')
  await alice.waitFor((f) => f === 'alice: hello', 'alice: hello')
  bob.send({ type: 'chat', text: 'two\nlines' })
  await alice.waitFor((f) => f === 'bob: two lines', 'a multi-line text flattened to one line')
  const dev = await openMqtt(t, urls.mqtt, { clientId: 'txt-dev' })
  await dev.publishAsync(`chat/${room}`, 'from mqtt')
  await alice.waitFor((f) => f === 'txt-dev: from mqtt', 'the MQTT chat as a line')
  alice.send('{bad json') // an error frame would be JSON: a text client gets none
  alice.send(JSON.stringify({ type: 'subscribe', topic: 'other/#' }))
  await dev.publishAsync('other/x', 'not chat')
  alice.send('last')
  await alice.waitFor((f) => f === 'alice: last', 'alice: last')
  const odd = alice.frames.filter((f) => typeof f !== 'string' || !/^[^:\n]+: [^\n]*$/.test(f))
  t.same(odd, [], 'no JSON, no presence, no errors, no non-chat messages')
  t.same(alice.frames, ['alice: hello', 'bob: two lines', 'txt-dev: from mqtt', 'alice: last'])
})

t.test('ping gets pong with its id and a ts', async (t) => {
  const { urls } = await startGateway(t)
  const c = await openHub(t, urls.ws, { name: 'p' })
  const before = Date.now()
  const pong = await c.request({ type: 'ping' })
  t.equal(pong.type, 'pong')
  t.ok(pong.ts >= before && pong.ts <= Date.now(), 'ts is the server time in epoch ms')
  c.send({ type: 'ping', id: 'c5' })
  t.match(await c.waitJson('pong', (f) => f.id === 'c5'), { type: 'pong', id: 'c5' })
  c.send({ type: 'ping', id: 42 })
  t.match(await c.waitJson('pong', (f) => f.id === 42), { id: 42 }, 'a number id comes back as the same number')
  c.send({ type: 'nope', id: 43 })
  t.match(await c.waitJson('error', (f) => f.id === 43), { code: 'BAD_FRAME', id: 43 }, 'and in an error')
  c.send({ type: 'ping' })
  await c.waitJson('pong', (f) => !('id' in f))
  t.pass('a ping without id gets a pong without id')
})

t.test('every frame with an id gets an ack with that id', async (t) => {
  const { urls } = await startGateway(t)
  const c = await openHub(t, urls.ws, { name: 'acks' })
  for (const frame of [
    { type: 'chat', text: 'x', id: 'c1' },
    { type: 'chat', text: 'to another room', room: 'elsewhere', id: 'c1b' },
    { type: 'publish', topic: 'a/b', payload: '1', id: 'c2' },
    { type: 'publish', topic: 'a/b', payload: '1', qos: 1, retain: true, id: 'c2b' },
    { type: 'subscribe', topic: 'a/+', id: 'c3' },
    { type: 'subscribe', topic: 'a/+', id: 'c3b' },
    { type: 'unsubscribe', topic: 'a/+', id: 'c4' },
    { type: 'unsubscribe', topic: 'never/subscribed', id: 'c4b' }
  ]) {
    c.send(frame)
    const answer = await c.waitFor<HubFrame>((f) => typeof f === 'object' && f.id === frame.id, `the answer to ${frame.id}`)
    t.same([answer.type, answer.id], ['ack', frame.id], `${frame.type} ${frame.id}`)
  }
  const other = await openHub(t, urls.ws, { name: 'other-room', room: 'elsewhere' })
  const h = await other.waitJson('history')
  t.same(h.messages.map((m: HubFrame) => m.payload), ['to another room'], 'chat.room sends to that room')
})

t.test('error frames carry the codes of the contract and the connection stays usable', async (t) => {
  const { urls } = await startGateway(t, { maxPayload: 1024, maxSubscriptions: 4, maxTopicLength: 64, maxTopicLevels: 5 })
  const c = await openHub(t, urls.ws, { name: 'errs' })
  await c.waitJson('history')

  const since = c.frames.length
  c.send('{bad json')
  const badJson = await c.waitFor<HubFrame>((f) => typeof f === 'object' && f.type === 'error' && c.frames.indexOf(f) >= since, 'an error for {bad json')
  t.match(badJson, { type: 'error', code: 'BAD_JSON' })
  t.notOk('id' in badJson, 'no id to echo')

  const cases: Array<[Record<string, unknown>, string]> = [
    [{ type: 'nope' }, 'BAD_FRAME'],
    [{ type: 'publish', topic: 'k/x', payload: 42 }, 'BAD_FRAME'],
    [{ type: 'publish', topic: 'k/x' }, 'BAD_FRAME'],
    [{ type: 'publish', topic: 'k/x', payload: 'x', qos: 2 }, 'BAD_FRAME'],
    [{ type: 'chat' }, 'BAD_FRAME'],
    [{ type: 'subscribe' }, 'BAD_FRAME'],
    [{ type: 'publish', topic: 'a/+/b', payload: 'x' }, 'BAD_TOPIC'],
    [{ type: 'publish', topic: '', payload: 'x' }, 'BAD_TOPIC'],
    [{ type: 'publish', topic: 'a\u0000b', payload: 'x' }, 'BAD_TOPIC'],
    [{ type: 'subscribe', topic: 'a/#/b' }, 'BAD_TOPIC'],
    [{ type: 'subscribe', topic: 'a+' }, 'BAD_TOPIC'],
    [{ type: 'unsubscribe', topic: '#/a' }, 'BAD_TOPIC'],
    [{ type: 'publish', topic: '$SYS/x', payload: 'x' }, 'ACL_DENIED'],
    [{ type: 'publish', topic: 'presence/someone-else', payload: 'offline' }, 'ACL_DENIED'],
    [{ type: 'publish', topic: 'big', payload: 'x'.repeat(1025) }, 'TOO_LARGE'],
    [{ type: 'publish', topic: 'big', payload: Buffer.alloc(1025).toString('base64'), encoding: 'base64' }, 'TOO_LARGE'],
    [{ type: 'chat', text: 'y'.repeat(1100) }, 'TOO_LARGE'],
    [{ type: 'publish', topic: 'l'.repeat(65), payload: 'x' }, 'LIMIT_EXCEEDED'],
    [{ type: 'publish', topic: 'a/b/c/d/e/f', payload: 'x' }, 'LIMIT_EXCEEDED'],
    [{ type: 'subscribe', topic: 'a/b/c/d/e/#' }, 'LIMIT_EXCEEDED']
  ]
  for (const [frame, code] of cases) {
    const answer = await c.request(frame)
    t.match(answer, { type: 'error', code }, `${JSON.stringify(frame).slice(0, 60)} -> ${code}`)
    t.ok(typeof answer.message === 'string' && answer.message.length > 0, `${code}: with a message`)
    t.ok(typeof answer.id === 'string', `${code}: the id is echoed`)
  }

  // Subscriptions: the limit counts distinct filters; the same filter twice is one.
  const answers: string[] = []
  for (const f of ['s/1', 's/2', 's/3', 's/4', 's/5']) answers.push(((await c.request({ type: 'subscribe', topic: f })) as HubFrame).code ?? 'ack')
  t.ok(answers.includes('LIMIT_EXCEEDED'), `too many subscriptions: LIMIT_EXCEEDED (${answers.join(', ')})`)
  const firstRefused = answers.indexOf('LIMIT_EXCEEDED')
  t.ok(answers.slice(firstRefused).every((a) => a === 'LIMIT_EXCEEDED'), 'every further one refused')
  t.equal((await c.request({ type: 'subscribe', topic: 's/1' })).type, 'ack', 'an existing filter again is fine')
  t.equal((await c.request({ type: 'unsubscribe', topic: 's/1' })).type, 'ack')
  t.equal((await c.request({ type: 'subscribe', topic: `s/${firstRefused + 1}` })).type, 'ack', 'after an unsubscribe there is room again')

  // A binary frame is not part of the protocol.
  const before = c.frames.length
  c.ws.send(Buffer.from([1, 2, 3]), { binary: true })
  const bin = await c.waitFor<HubFrame>((f) => typeof f === 'object' && f.type === 'error' && c.frames.indexOf(f) >= before, 'an error for a binary frame')
  t.equal(bin.code, 'BAD_FRAME', 'a binary frame: BAD_FRAME')

  t.equal((await c.request({ type: 'ping' })).type, 'pong', 'still usable')
  t.equal(c.closeCode, undefined, 'never closed')
  const ok = await c.request({ type: 'publish', topic: 'k/fine', payload: 'x'.repeat(1024) })
  t.equal(ok.type, 'ack', 'a payload of exactly the limit is accepted')
})

t.test('upgrades: /ws and /mqtt open, any other path is refused with an HTTP status', async (t) => {
  const { urls } = await startGateway(t)
  const base = urls.ws.replace(/\/ws$/, '')
  for (const path of ['/nope', '/', '/ws/extra', '/mqtt/x', '/WS', '/api/health']) {
    const r = await attemptUpgrade(base + path)
    t.ok(typeof r === 'number' && r >= 400 && r < 500, `${path}: refused with ${r}`)
  }
  t.equal(await attemptUpgrade(urls.ws), 'open', '/ws opens')
  t.equal(await attemptUpgrade(`${urls.ws}?name=q&room=r`), 'open', '/ws with a query opens')
  t.equal(await attemptUpgrade(urls['mqtt-ws'], ['mqtt']), 'open', '/mqtt opens with subprotocol mqtt')
  const foreign = await new Promise<number | 'open'>((resolve) => {
    const ws = new WebSocket(urls.ws, { headers: { Origin: 'http://evil.example' } })
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode ?? 0); req.destroy() })
    ws.on('open', () => { resolve('open'); ws.terminate() })
    ws.on('error', () => {})
  })
  t.equal(foreign, 403, 'a browser page from another origin is refused')
})

t.test('HTTP API: health, stats, metrics', async (t) => {
  const { urls } = await startGateway(t)
  const health = await http(`${urls.http}/api/health`)
  t.equal(health.status, 200)
  t.match(health.json, { status: 'ok' })

  const tcp = await openMqtt(t, urls.mqtt, { clientId: 'st-tcp' })
  const mws = await openMqtt(t, urls['mqtt-ws'], { clientId: 'st-mws' })
  await mws.subscribeAsync('st/#')
  const a = await openHub(t, urls.ws, { name: 'st-a' })
  const b = await openHub(t, urls.ws, { name: 'st-b' })
  await b.subscribe('st/#')
  await tcp.publishAsync('st/x', 'hello stats', { qos: 1 })
  await b.waitMessage('st/x')
  const mwsGotZ = nextMessage(mws, 'st/z')
  await a.request({ type: 'publish', topic: 'st/y', payload: 'from ws' })
  await b.waitMessage('st/y')
  t.equal((await post(`${urls.http}/api/publish`, JSON.stringify({ topic: 'st/z', payload: 'from http' }))).status, 200)
  await b.waitMessage('st/z')
  await mwsGotZ

  const stats = await http(`${urls.http}/api/stats`)
  t.equal(stats.status, 200)
  t.match(stats.type, /application\/json/)
  const s = stats.json
  t.ok(Number.isFinite(s.uptime) && s.uptime >= 0, `uptime ${s.uptime}`)
  const doors = s.doors as Record<string, { connections: number, messagesIn: number, messagesOut: number, bytesIn: number, bytesOut: number }>
  t.equal(doors.mqtt!.connections, 1, 'one MQTT/TCP connection')
  t.equal(doors['mqtt-ws']!.connections, 1, 'one MQTT/WS connection')
  t.equal(doors.ws!.connections, 2, 'two /ws connections')
  t.ok(doors.mqtt!.messagesIn >= 1, 'MQTT/TCP messages in')
  t.ok(doors.ws!.messagesIn >= 1, '/ws messages in')
  t.ok(doors.http!.messagesIn >= 1, 'HTTP messages in')
  t.ok(doors['mqtt-ws']!.messagesOut >= 3, `MQTT/WS messages out (${doors['mqtt-ws']!.messagesOut})`)
  t.ok(doors.ws!.messagesOut >= 3, `/ws messages out (${doors.ws!.messagesOut})`)
  for (const door of ['mqtt', 'mqtt-ws', 'ws']) {
    t.ok(doors[door]!.bytesIn > 0, `${door}: bytes in (${doors[door]!.bytesIn})`)
    t.ok(doors[door]!.bytesOut > 0, `${door}: bytes out (${doors[door]!.bytesOut})`)
  }

  await b.close()
  const after = await http(`${urls.http}/api/stats`)
  t.equal(after.json.doors.ws.connections, 1, 'a closed /ws connection is counted out')

  const metrics = await http(`${urls.http}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.type, /^text\/plain/)
  t.match(metrics.text, /^# HELP /m)
  t.match(metrics.text, /^# TYPE /m)
  t.match(metrics.text, /\{[^}]*door="ws"[^}]*\} 1$/m, 'a per-door sample for /ws')
  for (const line of metrics.text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+(\s+\d+)?$/.test(line) && !/ (NaN|[+-]Inf)$/.test(line)) {
      t.fail(`not a Prometheus sample line: ${line}`)
    }
  }
})

t.test('HTTP API: POST /api/publish errors are JSON with a 4xx status', async (t) => {
  const { urls } = await startGateway(t, { maxPayload: 1024, maxTopicLength: 64 })
  const url = `${urls.http}/api/publish`
  const cases: Array<[string, number, string, string?]> = [
    ['{bad json', 400, 'BAD_JSON'],
    ['[1,2]', 400, 'BAD_FRAME'],
    [JSON.stringify({ topic: 'a/b', payload: 42 }), 400, 'BAD_FRAME'],
    [JSON.stringify({ topic: 'a/b' }), 400, 'BAD_FRAME'],
    [JSON.stringify({ topic: 'a/b', payload: 'x', qos: 2 }), 400, 'BAD_FRAME'],
    [JSON.stringify({ topic: 'a/b', payload: 'x', retain: 'yes' }), 400, 'BAD_FRAME'],
    [JSON.stringify({ payload: 'x' }), 400, 'BAD_FRAME'],
    [JSON.stringify({ topic: 'a/+', payload: 'x' }), 400, 'BAD_TOPIC'],
    [JSON.stringify({ topic: '', payload: 'x' }), 400, 'BAD_TOPIC'],
    [JSON.stringify({ topic: '$SYS/x', payload: 'x' }), 403, 'ACL_DENIED'],
    [JSON.stringify({ topic: 'a/b', payload: 'x'.repeat(1025) }), 413, 'TOO_LARGE'],
    [JSON.stringify({ topic: 'l'.repeat(65), payload: 'x' }), 400, 'LIMIT_EXCEEDED'],
    ['topic=a&payload=b', 415, 'BAD_FRAME', 'application/x-www-form-urlencoded']
  ]
  for (const [body, status, code, type] of cases) {
    const r = await post(url, body, type)
    t.equal(r.status, status, `${body.slice(0, 40)} -> ${status}`)
    t.match(r.json, { statusCode: status, code, message: /\S/ }, `${body.slice(0, 40)} -> ${code}`)
    t.notMatch(r.text, /at .*\.js:\d+/, 'no stack trace')
  }
  const huge = await post(url, JSON.stringify({ topic: 'a', payload: 'x'.repeat(10_000) }))
  t.equal(huge.status, 413, 'a body over the HTTP limit is 413')
  t.match(huge.json, { code: 'TOO_LARGE' })
  const missing = await http(`${urls.http}/api/nothing`)
  t.equal(missing.status, 404)
  t.match(missing.json, { statusCode: 404, code: 'NOT_FOUND' })
  const ok = await post(url, JSON.stringify({ topic: 'a/b', payload: 'fine' }))
  t.equal(ok.status, 200, 'a good publish is 200')
})
