// Issue 13, items 2, 6, 7 and 13: what the gateway keeps belongs to someone and is
// bounded. A persistent session belongs to the user who made it (CONNACK 5 for anyone
// else, also after a restart); every delivery is checked against the receiver's read
// rights; a reload reaches offline sessions; retained messages, offline queues, the
// history's topics and retained presence are capped; a refused MQTT publish is
// acknowledged and dropped. Real gateways, real MQTT clients and mosquitto_pub.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { addUser } from '../../src/core/policy/users.js'
import { storedSessionsOf } from '../../src/engine/reconcile.js'
import { createGateway } from '../../src/index.js'
import { FusionError } from '../../src/core/errors.js'
import { openHub, openMqtt, nextMqttMessage, startGateway, requireProgram, type Started } from '../helpers/gateway.js'
import { getJson, portOf } from '../helpers/security.js'

const dir = mkdtempSync(join(tmpdir(), 'fusion-stored-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const usersFile = join(dir, 'users')
await addUser(usersFile, 'alice', 'alice-pw')
await addUser(usersFile, 'bob', 'bob-pw')

/** The CONNACK code a CONNECT gets (0 = accepted); the client is closed. */
function connackCode (url: string, opts: mqtt.IClientOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
    const timer = setTimeout(() => { c.end(true); reject(new Error('no CONNACK in 5 s')) }, 5000)
    c.once('connect', () => { clearTimeout(timer); c.end(true); resolve(0) })
    c.once('error', (err) => { clearTimeout(timer); c.end(true); resolve(Number((err as { code?: number }).code ?? -1)) })
  })
}

/** Messages `client` receives until `marker` arrives on `markerTopic` (the marker excluded). */
function collectUntil (client: MqttClient, markerTopic: string, timeoutMs = 5000): Promise<Array<{ topic: string, payload: string }>> {
  const got: Array<{ topic: string, payload: string }> = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.removeListener('message', on); reject(new Error(`no ${markerTopic} within ${timeoutMs} ms; got ${JSON.stringify(got)}`)) }, timeoutMs)
    const on = (topic: string, payload: Buffer): void => {
      if (topic === markerTopic) { clearTimeout(timer); client.removeListener('message', on); resolve(got); return }
      got.push({ topic, payload: payload.toString() })
    }
    client.on('message', on)
  })
}

/** Waits until `cond()` holds, checking after each event-loop turn for at most `ms`. */
async function until (cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function retainedCount (g: Started, filter: string): Promise<number> {
  const p = (g.gateway.broker as unknown as { persistence: { createRetainedStream (f: string): AsyncIterable<unknown> } }).persistence
  let n = 0
  for await (const _ of p.createRetainedStream(filter)) n++
  return n
}

t.test('item 2: a persistent session belongs to the user who made it', async (t) => {
  const aclFile = join(dir, 'acl-2')
  writeFileSync(aclFile, 'user alice\ntopic readwrite alice/#\n\nuser bob\ntopic readwrite bob/#\n')
  const g = await startGateway(t, { users: usersFile, acl: aclFile })
  const alice = await openMqtt(t, g.urls.mqtt, { clientId: 'alice-dev', clean: false, username: 'alice', password: 'alice-pw' })
  await alice.subscribeAsync('alice/#', { qos: 1 })
  await alice.endAsync()
  const pub = await openMqtt(t, g.urls.mqtt, { clientId: 'alice-pub', username: 'alice', password: 'alice-pw' })
  await pub.publishAsync('alice/private', 'for alice only', { qos: 1 })

  t.equal(await connackCode(g.urls.mqtt, { clientId: 'alice-dev', clean: false, username: 'bob', password: 'bob-pw' }), 5,
    "bob with alice's client id and clean=false: CONNACK 5 (he would drain her queue)")
  t.equal(await connackCode(g.urls.mqtt, { clientId: 'alice-dev', clean: true, username: 'bob', password: 'bob-pw' }), 5,
    "bob with alice's client id and clean=true: CONNACK 5 (he would wipe her session)")
  t.equal(g.gateway.stats.stored.takeoverRefused, 2, 'counted in stored.takeoverRefused')

  const back = mqtt.connect(g.urls.mqtt, { clientId: 'alice-dev', clean: false, username: 'alice', password: 'alice-pw', reconnectPeriod: 0 })
  t.teardown(() => { back.end(true) })
  const queued = nextMqttMessage(back, (topic) => topic === 'alice/private')
  t.equal((await queued).payload.toString(), 'for alice only', 'alice gets her queued message: her session is intact')

  // While alice is connected, bob cannot cut her off with her id either ([MQTT-3.1.4-2]).
  t.equal(await connackCode(g.urls.mqtt, { clientId: 'alice-dev', clean: true, username: 'bob', password: 'bob-pw' }), 5, 'nor while she is online')
  t.ok(back.connected, 'alice stays connected')
  // (With auth on, /metrics needs a token; the other cases read it without auth.)
  t.equal(g.gateway.stats.stored.takeoverRefused, 3, 'each refusal is counted')
})

t.test('item 2: the owner of a session survives a restart (on-disk store)', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fusion-stored-disk-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const first = await startGateway(t, { users: usersFile, dataDir })
  const alice = await openMqtt(t, first.urls.mqtt, { clientId: 'alice-keeps', clean: false, username: 'alice', password: 'alice-pw' })
  await alice.subscribeAsync('x/#', { qos: 1 })
  await alice.endAsync()
  await first.gateway.close()

  const second = await startGateway(t, { users: usersFile, dataDir })
  t.equal(await connackCode(second.urls.mqtt, { clientId: 'alice-keeps', clean: false, username: 'bob', password: 'bob-pw' }), 5,
    "after a restart, bob with alice's client id: CONNACK 5")
  t.equal(await connackCode(second.urls.mqtt, { clientId: 'alice-keeps', clean: false, username: 'alice', password: 'alice-pw' }), 0,
    'alice herself: accepted')
})

t.test('item 2: every delivery is checked against the receiver\'s read rights (live and retained)', async (t) => {
  // An ACL that grants a wildcard filter but not every topic under it (a plugin's rules,
  // given as createGateway's `acl`): only the delivery check can keep secret/ from # readers.
  const acl = {
    checkPublish () {},
    checkSubscribe (_who: unknown, filter: string) { if (filter.startsWith('secret/')) throw new FusionError('ACL_DENIED', 'no secrets') }
  }
  const gateway = await createGateway({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, memory: true }, { acl })
  t.teardown(() => gateway.close())
  const g = { gateway, urls: await gateway.listen() }
  const pre = await openMqtt(t, g.urls.mqtt, { clientId: 'early' })
  await pre.publishAsync('secret/old', 'retained secret', { qos: 1, retain: true })
  const reader = await openMqtt(t, g.urls.mqtt, { clientId: 'reader' })
  const got = collectUntil(reader, 'open/marker')
  const granted = await reader.subscribeAsync('#', { qos: 0 })
  t.equal(granted[0]?.qos, 0, 'the filter # is granted')
  const pub = await openMqtt(t, g.urls.mqtt, { clientId: 'writer' })
  await pub.publishAsync('secret/live', 'live secret', { qos: 1 })
  await pub.publishAsync('open/marker', 'end')
  const topics = (await got).map((m) => m.topic)
  t.notOk(topics.some((x) => x.startsWith('secret/')), `no secret/ topic delivered through # (got ${topics.join(', ')})`)
  t.ok(g.gateway.stats.stored.forwardDenied >= 2, 'the dropped deliveries are counted in stored.forwardDenied')
})

t.test('item 6: a reload reaches the stored subscriptions of offline sessions', async (t) => {
  const aclFile = join(dir, 'acl-6')
  writeFileSync(aclFile, 'user alice\ntopic readwrite a/#\ntopic readwrite b/#\n')
  const g = await startGateway(t, { users: usersFile, acl: aclFile })
  const alice = await openMqtt(t, g.urls.mqtt, { clientId: 'alice-off', clean: false, username: 'alice', password: 'alice-pw' })
  await alice.subscribeAsync(['a/#', 'b/#'], { qos: 1 })
  await alice.endAsync()
  const pub = await openMqtt(t, g.urls.mqtt, { clientId: 'alice-pub6', username: 'alice', password: 'alice-pw' })
  await pub.publishAsync('a/1', 'queued before the reload', { qos: 1 })

  writeFileSync(aclFile, 'user alice\ntopic write a/#\ntopic readwrite b/#\n')
  g.gateway.reload()
  t.equal(await storedSessionsOf(g.gateway.broker)?.pending, 1, 'the reload removed the one revoked stored subscription')
  const subs = await (g.gateway.broker as unknown as { persistence: { subscriptionsByClient (c: { id: string }): Promise<Array<{ topic: string }>> } })
    .persistence.subscriptionsByClient({ id: 'alice-off' })
  t.same(subs.map((s) => s.topic).sort(), ['b/#'], 'only b/# is left in the persistence')
  await pub.publishAsync('a/2', 'after the reload', { qos: 1 })

  const back = mqtt.connect(g.urls.mqtt, { clientId: 'alice-off', clean: false, username: 'alice', password: 'alice-pw', reconnectPeriod: 0 })
  t.teardown(() => { back.end(true) })
  const got = collectUntil(back, 'b/marker')
  await new Promise<void>((resolve) => back.once('connect', () => resolve()))
  await pub.publishAsync('b/marker', 'end', { qos: 1 })
  t.same(await got, [], 'nothing queued on the revoked subscription is delivered, before or after the reload')
  t.equal(g.gateway.stats.stored.offlineRevoked, 1, 'counted in stored.offlineRevoked')
})

t.test('item 7: retained presence is kept for live clients and a bounded recent-offline list', async (t) => {
  const g = await startGateway(t, { presenceOfflineKeep: 3 })
  const watcher = await openMqtt(t, g.urls.mqtt, { clientId: 'watcher' })
  let cleared = 0
  watcher.on('message', (topic, payload) => { if (topic.startsWith('presence/') && payload.length === 0) cleared++ })
  await watcher.subscribeAsync('presence/+')
  for (let i = 0; i < 8; i++) {
    const c = await openMqtt(t, g.urls.mqtt, { clientId: `short-${i}` })
    await c.endAsync()
  }
  await until(() => cleared >= 5, '5 cleared presence topics')
  t.equal(await retainedCount(g, 'presence/+'), 4, 'retained presence: the live watcher and the 3 most recent offline clients')
  t.equal(g.gateway.stats.stored.presencePruned, 5, 'counted in stored.presencePruned')

  t.equal(await connackCode(g.urls.mqtt, { clientId: 'ghost', will: { topic: 'presence/ghost', payload: Buffer.from('online'), qos: 0, retain: true } }), 5,
    'a will saying online on its own presence topic (a ghost for ever): CONNACK 5')
  t.equal(await connackCode(g.urls.mqtt, { clientId: 'dev', will: { topic: 'presence/dev', payload: Buffer.from('offline'), qos: 0, retain: true } }), 0,
    'a will saying offline there is fine')
})

t.test('item 7: 20 short-lived mosquitto_pub runs leave at most the recent-offline list', async (t) => {
  if (!requireProgram(t, 'mosquitto_pub', 'mosquitto-clients')) return
  const g = await startGateway(t, { presenceOfflineKeep: 5 })
  for (let i = 0; i < 20; i++) {
    const code = await new Promise<number | null>((resolve) => {
      const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(portOf(g.urls.mqtt)), '-i', `pub-${i}`, '-t', 'data/x', '-m', String(i)], { stdio: 'ignore' })
      p.once('exit', resolve)
    })
    t.equal(code, 0, `mosquitto_pub run ${i}`, { diagnostic: false })
  }
  await until(() => g.gateway.stats.stored.presencePruned >= 15, '15 pruned presence topics')
  await until(() => g.gateway.broker.connectedClients === 0, 'every run gone')
  t.ok(await retainedCount(g, 'presence/+') <= 5, 'at most 5 retained presence topics after 20 runs (was 20)')
})

t.test('item 7: the retained cap refuses new topics (MQTT: not retained; /ws and HTTP: STORE_FULL)', async (t) => {
  const g = await startGateway(t, { maxRetained: 3, maxRetainedBytes: 4096 })
  const pub = await openMqtt(t, g.urls.mqtt, { clientId: 'ret-pub' })
  for (let i = 1; i <= 4; i++) await pub.publishAsync(`r/${i}`, `v${i}`, { qos: 1, retain: true })
  t.equal(await retainedCount(g, 'r/#'), 3, 'three retained topics kept; the fourth is not retained')
  t.ok(pub.connected, 'the MQTT publisher stays connected')
  await pub.publishAsync('r/1', 'replaced', { qos: 1, retain: true })
  t.equal(await retainedCount(g, 'r/#'), 3, 'replacing a kept topic is allowed')
  const hub = await openHub(t, g.urls.ws, { name: 'w' })
  const err = await hub.request({ type: 'publish', topic: 'r/ws', payload: 'x', retain: true })
  t.equal(err.code, 'STORE_FULL', '/ws: an error frame STORE_FULL')
  const res = await fetch(`${g.urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'r/http', payload: 'x', retain: true }) })
  t.equal(res.status, 507, 'HTTP: 507 STORE_FULL')
  t.equal((await res.json() as { code: string }).code, 'STORE_FULL')
  await pub.publishAsync('r/1', '', { qos: 1, retain: true })
  await pub.publishAsync('r/big', 'x'.repeat(5000), { qos: 1, retain: true })
  t.equal(await retainedCount(g, 'r/big'), 0, 'a retained message over --max-retained-bytes is not kept')
  const stats = (await getJson(`${g.urls.http}/api/stats`)).json
  t.equal(stats.stored.retainedRefused, 4, '/api/stats stored.retainedRefused counts the 4 refusals')
  t.equal(stats.stored.retainedMessages, 2, '/api/stats: 2 retained topics held (presence aside, r/1 cleared)')
})

for (const disk of [false, true]) {
  t.test(`item 7: an offline session's queue is capped, oldest dropped (${disk ? 'LevelDB' : 'memory'})`, async (t) => {
    const g = await startGateway(t, { maxQueued: 3, disk })
    const dev = await openMqtt(t, g.urls.mqtt, { clientId: 'q-dev', clean: false })
    await dev.subscribeAsync('q/#', { qos: 1 })
    await dev.endAsync()
    const pub = await openMqtt(t, g.urls.mqtt, { clientId: 'q-pub' })
    for (let i = 1; i <= 7; i++) await pub.publishAsync(`q/${i}`, String(i), { qos: 1 })
    await until(() => g.gateway.stats.stored.queueDropped === 4, '4 dropped queued messages')
    const back = mqtt.connect(g.urls.mqtt, { clientId: 'q-dev', clean: false, reconnectPeriod: 0 })
    t.teardown(() => { back.end(true) })
    // The queue comes in order: everything before the newest (7) has arrived with it.
    const got: string[] = []
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no q/7 in 5 s; got ${got.join(',')}`)), 5000)
      back.on('message', (_topic, payload) => { got.push(payload.toString()); if (payload.toString() === '7') { clearTimeout(timer); resolve() } })
    })
    t.same(got, ['5', '6', '7'], 'the 3 newest are delivered, the 4 oldest were dropped')
    const metrics = await (await fetch(`${g.urls.http}/metrics`)).text()
    t.match(metrics, /fusion_stored_caps_total\{kind="queue_dropped"\} 4/, '/metrics counts them')
  })
}

t.test('item 7: the history log keeps at most --history-max-topics topics', async (t) => {
  const g = await startGateway(t, { historyMaxTopics: 2 })
  const post = (topic: string): Promise<Response> => fetch(`${g.urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, payload: 'hi' }) })
  for (const room of ['a', 'b', 'c']) t.equal((await post(`chat/${room}`)).status, 200, `chat/${room} is delivered`)
  t.equal(g.gateway.stats.stored.historyTopicsRefused, 1, 'the third topic is not logged, counted')
  const c = (await getJson(`${g.urls.http}/api/history?topic=chat%2Fc`)).json
  const a = (await getJson(`${g.urls.http}/api/history?topic=chat%2Fa`)).json
  t.equal(JSON.stringify(c).includes('"hi"'), false, 'no history for chat/c')
  t.equal(JSON.stringify(a).includes('hi'), true, 'chat/a is logged')
})

t.test('item 13: a refused MQTT publish is acknowledged and dropped (mosquitto_pub)', async (t: Test) => {
  if (!requireProgram(t, 'mosquitto_pub', 'mosquitto-clients')) return
  const aclFile = join(dir, 'acl-13')
  writeFileSync(aclFile, 'topic readwrite open/#\n')
  const g = await startGateway(t, { acl: aclFile })
  const run = (topic: string, qos: string): Promise<number | null> => new Promise((resolve) => {
    const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(portOf(g.urls.mqtt)), '-i', `deny-${qos}`, '-q', qos, '-t', topic, '-m', 'x', '--repeat', '3'], { stdio: 'ignore' })
    p.once('exit', resolve)
  })
  t.equal(await run('closed/1', '1'), 0, 'QoS 1 to a refused topic: PUBACKed, mosquitto_pub exits 0')
  t.equal(await run('closed/2', '2'), 0, 'QoS 2: PUBREC/PUBCOMP, exits 0')
  t.equal(await run('$SYS/fake', '1'), 0, '$SYS: acknowledged too')
  const stats = (await getJson(`${g.urls.http}/api/stats`)).json
  t.equal(stats.denied.ignored, 9, '/api/stats denied.ignored counts each refused publish')
  t.equal(stats.admitted['mqtt-publish'], 0, 'none was admitted')
  const metrics = await (await fetch(`${g.urls.http}/metrics`)).text()
  t.match(metrics, /fusion_mqtt_denied_publishes_total\{action="ignored"\} 9/, '/metrics counts them')
})
