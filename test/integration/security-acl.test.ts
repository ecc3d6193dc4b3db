// One ACL for every door: a denied publish and a denied subscribe on MQTT/TCP, MQTT/WS,
// /ws and HTTP, with a rules file (users, deny, %u/%c patterns) and with the default
// policy ($ topics read-only).
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import WebSocket from 'ws'
import { openHub, openMqtt, startGateway, nextMqttMessage } from '../helpers/gateway.js'
import { addUser } from '../../src/core/policy/users.js'
import { assertHealthy, getJson, postJson } from '../helpers/security.js'

const dir = mkdtempSync(join(tmpdir(), 'fusion-acl-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const usersFile = join(dir, 'users')
await addUser(usersFile, 'alice', 'alice-pw')
await addUser(usersFile, 'bob', 'bob-pw')
const aclFile = join(dir, 'acl')
writeFileSync(aclFile, `# anonymous: read the public room only
topic read chat/public

user alice
topic readwrite chat/#
topic readwrite sensors/#
topic deny sensors/secret

user bob
topic readwrite chat/#
topic read sensors/+

pattern readwrite home/%u/#
pattern write presence/%c
`)

/** The SUBACK return codes for `filters` (MQTT.js rejects when one is 0x80). */
async function suback (c: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters)).map((g) => g.qos)
  } catch (err) {
    const granted = (err as { packet?: { granted?: Array<number | { qos: number }> } }).packet?.granted
    if (!granted) throw err
    return granted.map((g) => (typeof g === 'number' ? g : g.qos))
  }
}

async function login (http: string, username: string, password: string): Promise<string> {
  const r = await postJson(`${http}/api/login`, { username, password })
  return r.json.token as string
}

t.test('a rules file with auth: denied publish and subscribe on every door', async (t) => {
  const { urls } = await startGateway(t, { users: usersFile, acl: aclFile })
  const aliceToken = await login(urls.http, 'alice', 'alice-pw')
  const bobToken = await login(urls.http, 'bob', 'bob-pw')
  // alice reads sensors/a from MQTT: what bob publishes there must never arrive.
  const watcher = await openMqtt(t, urls.mqtt, { clientId: 'watcher', username: 'alice', password: 'alice-pw' })
  await watcher.subscribeAsync(['sensors/a', 'home/alice/#'])
  const seen: string[] = []
  watcher.on('message', (_topic, p) => seen.push(p.toString()))

  for (const [door, url] of [['MQTT/TCP', urls.mqtt], ['MQTT/WS', urls['mqtt-ws']]] as const) {
    const bob = await openMqtt(t, url, { clientId: `bob-${door.replace('/', '')}`, username: 'bob', password: 'bob-pw' })
    const granted = await suback(bob, ['sensors/secret', 'sensors/#', 'sensors/b', 'home/alice/#', 'home/bob/x'])
    t.same(granted, [0, 128, 0, 128, 0], `${door}: SUBACK 0x80 for each filter the ACL refuses`)
    // --deny-action ignore (the default): acknowledged and dropped, as Mosquitto and EMQX do.
    await bob.publishAsync('sensors/a', `denied-${door}`, { qos: 1 })
    t.ok(bob.connected, `${door}: a denied publish is acknowledged (PUBACK) and dropped; the connection stays (MQTT 3.1.1 has no error reply)`)
    const alice = await openMqtt(t, url, { clientId: `alice-${door.replace('/', '')}`, username: 'alice', password: 'alice-pw' })
    t.same(await suback(alice, ['sensors/secret', 'sensors/+', 'sensors/a']), [128, 128, 0], `${door}: a deny rule refuses every filter that reaches it`)
    const got = nextMqttMessage(watcher, (_t, p) => p.toString() === `allowed-${door}`)
    await alice.publishAsync('sensors/a', `allowed-${door}`)
    await got
  }

  const bobHub = await openHub(t, urls.ws, { token: bobToken, room: 'lobby' })
  await bobHub.waitJson('history')
  const pub = await bobHub.request({ type: 'publish', topic: 'sensors/a', payload: 'denied-ws' })
  t.same([pub.type, pub.code], ['error', 'ACL_DENIED'], '/ws: a denied publish is an ACL_DENIED error')
  t.match(pub.message, /sensors\/a/)
  const sub = await bobHub.request({ type: 'subscribe', topic: 'home/alice/#' })
  t.same([sub.type, sub.code], ['error', 'ACL_DENIED'], '/ws: a denied subscribe too')
  t.equal((await bobHub.request({ type: 'subscribe', topic: 'sensors/a' })).type, 'ack', '/ws: an allowed one is acked')
  t.equal((await bobHub.request({ type: 'publish', topic: 'home/bob/lamp', payload: 'on' })).type, 'ack', '/ws: %u patterns')
  t.equal(bobHub.ws.readyState, WebSocket.OPEN, '/ws: the connection stays')

  const rest = await postJson(`${urls.http}/api/publish`, { topic: 'sensors/a', payload: 'denied-http' }, { authorization: `Bearer ${bobToken}` })
  t.equal(rest.status, 403, 'HTTP: 403')
  t.equal(rest.json.code, 'ACL_DENIED')
  const fin = nextMqttMessage(watcher, (_t, p) => p.toString() === 'allowed-http')
  const restOk = await postJson(`${urls.http}/api/publish`, { topic: 'sensors/a', payload: 'allowed-http' }, { authorization: `Bearer ${aliceToken}` })
  t.equal(restOk.status, 200)
  const hist = await getJson(`${urls.http}/api/history?topic=home/alice/x`, { authorization: `Bearer ${bobToken}` })
  t.equal(hist.status, 403, 'HTTP: reading a topic the ACL refuses is 403 too')

  await fin
  t.same(seen.filter((s) => s.startsWith('denied')), [], 'no denied message reached a subscriber')
  await assertHealthy(t, urls, 'denied requests', { hubQuery: { token: aliceToken }, mqtt: { username: 'alice', password: 'alice-pw' } })
})

t.test('a rules file without auth: anonymous rules; a claimed user name gets nothing more', async (t) => {
  const { urls } = await startGateway(t, { acl: aclFile })
  const hub = await openHub(t, urls.ws, { room: 'public' })
  await hub.waitJson('history')
  const chat = await hub.request({ type: 'chat', text: 'hello' })
  t.same([chat.type, chat.code], ['error', 'ACL_DENIED'], 'anonymous may read chat/public, not write it')
  const refused = await new Promise<{ code: number, error: any }>((resolve) => {
    const ws = new WebSocket(`${urls.ws}?room=staff`)
    let error: any
    ws.on('message', (d) => { const f = JSON.parse(d.toString()); if (f.type === 'error') error = f })
    ws.on('close', (code) => resolve({ code, error }))
    ws.on('error', () => {})
  })
  t.same([refused.code, refused.error?.code], [1008, 'ACL_DENIED'], 'joining a room the ACL refuses: ACL_DENIED, then 1008')
  // Without auth a user name is only a claim: it must not unlock alice's rules.
  const claimer = await openMqtt(t, urls.mqtt, { clientId: 'claimer', username: 'alice', password: 'whatever' })
  t.same(await suback(claimer, ['sensors/a', 'chat/public']), [128, 0])
  await claimer.publishAsync('chat/public', 'x', { qos: 1 })
  t.ok(claimer.connected, 'refused, acknowledged and dropped (--deny-action ignore)')
  // presence/%c: a device may write its own presence, nobody else's.
  const dev = await openMqtt(t, urls.mqtt, { clientId: 'dev-7' })
  await dev.publishAsync('presence/dev-7', JSON.stringify({ status: 'online' }))
  t.ok(dev.connected, 'its own presence topic is allowed')
})

t.test('the default policy: $ topics are read-only and presence belongs to its client, on every door', async (t) => {
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws)
  await hub.waitJson('history')
  const sys = await hub.request({ type: 'publish', topic: '$SYS/fake', payload: '1' })
  t.equal(sys.code, 'ACL_DENIED', '/ws')
  const other = await hub.request({ type: 'publish', topic: 'presence/someone', payload: '{}' })
  t.equal(other.code, 'ACL_DENIED', '/ws: presence of another client')
  t.equal((await hub.request({ type: 'subscribe', topic: '$SYS/#' })).type, 'ack', '/ws: $SYS may be read')
  t.equal((await postJson(`${urls.http}/api/publish`, { topic: '$SYS/fake', payload: '1' })).status, 403, 'HTTP')
  for (const url of [urls.mqtt, urls['mqtt-ws']]) {
    const c = await openMqtt(t, url, { clientId: `sys-${url.slice(0, 4)}` })
    await c.publishAsync('$SYS/fake', '1', { qos: 1 })
    t.ok(c.connected, `${url.split(':')[0]}: acknowledged and dropped, the connection stays (--deny-action ignore)`)
  }
  await assertHealthy(t, urls, 'publishes to $SYS')
})
