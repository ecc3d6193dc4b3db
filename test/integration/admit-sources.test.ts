// Every way a message enters the topic space goes through core/admit.ts: for each source
// a refused message is refused as the ACL says and an accepted one is counted under its
// source. The table is typed Record<Source, ...>, so a new source without a case here
// does not compile.
import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { SOURCES, type Source } from '../../src/core/admit.js'
import { stampOrigin } from '../../src/core/origin.js'
import { startGateway, openHub, openMqtt, nextMqttMessage, type Started } from '../helpers/gateway.js'
import { startMosquitto, until } from '../helpers/mosquitto.js'

const dir = mkdtempSync(join(tmpdir(), 'fusion-admit-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const aclFile = join(dir, 'acl')
writeFileSync(aclFile, 'topic readwrite #\ntopic deny denied/#\ntopic deny chat/denied\n')

let g: Started
t.before(async () => { g = await startGateway(t, { acl: aclFile }) })

const admitted = (s: Source): number => g.gateway.stats.admitted[s]

function authorizePublish (packet: Record<string, unknown>): Promise<Error | null> {
  const broker = g.gateway.broker as unknown as { authorizePublish (c: null, p: unknown, cb: (err: Error | null) => void): void }
  return new Promise((resolve) => broker.authorizePublish(null, packet, (err) => resolve(err ?? null)))
}

const cases: Record<Source, (t: Test) => Promise<void>> = {
  async 'mqtt-publish' (t) {
    const sub = await openMqtt(t, g.urls.mqtt, { clientId: 'adm-sub' })
    await sub.subscribeAsync('ok/#')
    const pub = await openMqtt(t, g.urls.mqtt, { clientId: 'adm-pub', username: 'bo\u001b[31mb\nx' })
    const before = admitted('mqtt-publish')
    const got = nextMqttMessage(sub, (topic) => topic === 'ok/1')
    await pub.publishAsync('ok/1', 'hi')
    await got
    t.equal(admitted('mqtt-publish'), before + 1, 'counted as mqtt-publish')
    const hub = await openHub(t, g.urls.ws, { room: 'names' })
    const seen = hub.waitMessage('chat/names')
    await pub.publishAsync('chat/names', 'plain')
    t.equal((await seen).from, 'bo[31mbx', 'control characters are taken out of an MQTT user name')
    // --deny-action ignore (the default): acknowledged, dropped, counted; the connection stays.
    const ignoredBefore = g.gateway.stats.denied.ignored
    await pub.publishAsync('denied/1', 'no', { qos: 1 })
    t.equal(g.gateway.stats.denied.ignored, ignoredBefore + 1, 'a refused MQTT publish is acknowledged (PUBACK) and counted in denied.ignored')
    const after = nextMqttMessage(sub, (topic) => topic === 'ok/2')
    await pub.publishAsync('ok/2', 'still here')
    await after
    t.ok(pub.connected, 'the connection stays open after a refused publish')
    // --deny-action disconnect: the connection closes ([MQTT-3.3.5-2] allows either).
    const strict = await startGateway(t, { acl: aclFile, denyAction: 'disconnect' })
    const pub2 = await openMqtt(t, strict.urls.mqtt, { clientId: 'adm-pub-strict' })
    const closed = new Promise<void>((resolve) => pub2.once('close', () => resolve()))
    pub2.publish('denied/1', 'no')
    await closed
    t.equal(strict.gateway.stats.denied.disconnected, 1, 'with --deny-action disconnect a refused MQTT publish closes the connection, counted')
  },
  async 'mqtt-will' (t) {
    const refused = mqtt.connect(g.urls.mqtt, { clientId: 'adm-will-bad', reconnectPeriod: 0, will: { topic: 'denied/will', payload: Buffer.from('x'), qos: 0, retain: false } })
    const err = await new Promise<Error & { code?: number }>((resolve) => refused.once('error', resolve))
    refused.end(true)
    t.equal(err.code, 5, 'a will on a refused topic: CONNACK 5, not authorized')
    const reserved = mqtt.connect(g.urls.mqtt, { clientId: 'adm-will-presence', reconnectPeriod: 0, will: { topic: 'presence/someone-else', payload: Buffer.from('online'), qos: 0, retain: true } })
    const err2 = await new Promise<Error & { code?: number }>((resolve) => reserved.once('error', resolve))
    reserved.end(true)
    t.equal(err2.code, 5, "a will on another client's presence topic: CONNACK 5")
    const sub = await openMqtt(t, g.urls.mqtt, { clientId: 'adm-will-sub' })
    await sub.subscribeAsync('ok/will')
    const dying = await openMqtt(t, g.urls.mqtt, { clientId: 'adm-will-ok', will: { topic: 'ok/will', payload: Buffer.from('gone'), qos: 0, retain: false } })
    const before = admitted('mqtt-will')
    const got = nextMqttMessage(sub, (topic) => topic === 'ok/will')
    ;(dying as unknown as { stream: { destroy (): void } }).stream.destroy()
    t.equal((await got).payload.toString(), 'gone', 'the will is published when the client dies')
    t.equal(admitted('mqtt-will'), before + 1, 'counted as mqtt-will')
  },
  async 'stored-will' (t) {
    const stamped = (topic: string, user?: string): Record<string, unknown> => {
      const p: Record<string, unknown> = { cmd: 'publish', topic, payload: Buffer.from('w'), qos: 0, retain: false, clientId: 'old-dev', brokerId: 'dead' }
      stampOrigin(p, { ts: 1, via: 'mqtt', from: 'old-dev', clientId: 'old-dev', door: 'mqtt', ...(user ? { user } : {}) })
      return p
    }
    const before = admitted('stored-will')
    t.equal(await authorizePublish(stamped('ok/stored')), null, 'a stored will stamped at CONNECT is admitted as its client')
    t.equal(admitted('stored-will'), before + 1, 'counted as stored-will')
    t.match(await authorizePublish(stamped('denied/stored')), { code: 'ACL_DENIED' }, 'a stored will on a refused topic is refused')
    t.match(await authorizePublish(stamped('$SYS/fake')), { code: 'ACL_DENIED' }, 'a stored will on $SYS is refused')
    t.match(await authorizePublish(stamped('presence/someone-else')), { code: 'ACL_DENIED' }, "a stored will on another client's presence is refused")
    t.match(await authorizePublish({ cmd: 'publish', topic: 'ok/x', payload: Buffer.from('w'), qos: 0, retain: false, clientId: 'old', brokerId: 'dead' }),
      { code: 'NOT_AUTHORIZED' }, 'a stored will without the identity stamp is refused')
  },
  async 'ws-chat' (t) {
    const c = await openHub(t, g.urls.ws, { room: 'lobby', name: 'wsc' })
    const before = admitted('ws-chat')
    await c.request({ type: 'chat', text: 'hi' })
    t.equal(admitted('ws-chat'), before + 1, 'counted as ws-chat')
    const err = await c.request({ type: 'chat', room: 'denied', text: 'no' })
    t.equal(err.code, 'ACL_DENIED', 'a chat to a refused room: ACL_DENIED')
  },
  async 'ws-publish' (t) {
    const c = await openHub(t, g.urls.ws, { name: 'wsp' })
    const before = admitted('ws-publish')
    await c.request({ type: 'publish', topic: 'ok/ws', payload: 'x' })
    t.equal(admitted('ws-publish'), before + 1, 'counted as ws-publish')
    const err = await c.request({ type: 'publish', topic: 'denied/ws', payload: 'x' })
    t.equal(err.code, 'ACL_DENIED', 'a publish to a refused topic: ACL_DENIED')
  },
  async 'http-publish' (t) {
    const post = (topic: string): Promise<Response> => fetch(`${g.urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, payload: 'x' }) })
    const before = admitted('http-publish')
    t.equal((await post('ok/http')).status, 200)
    t.equal(admitted('http-publish'), before + 1, 'counted as http-publish')
    t.equal((await post('denied/http')).status, 403, 'a publish to a refused topic: 403')
  },
  async 'bridge-in' (t) {
    // A real mosquitto upstream; the link's ACL user is bridge:up (docs/BRIDGE.md).
    const up = await startMosquitto(t)
    const acl = join(dir, 'acl-bridge')
    writeFileSync(acl, 'topic readwrite #\nuser bridge:up\ntopic write in/ok/#\n')
    const conf = join(dir, 'bridge.conf')
    writeFileSync(conf, `connection up\nurl ${up.url}\ntopic in/# in 1 "" site/\n`)
    const b = await startGateway(t, { acl, bridge: conf })
    await until(async () => { const s = await (await fetch(`${b.urls.http}/api/stats`)).json() as any; return s.upstream[0].state === 'connected' || undefined }, 'the link up')
    const sub = await openMqtt(t, b.urls.mqtt, { clientId: 'adm-bridge-sub' })
    await sub.subscribeAsync('in/#', { qos: 1 })
    const upPub = await openMqtt(t, up.url)
    const got = nextMqttMessage(sub, (topic) => topic === 'in/ok/1')
    await upPub.publishAsync('site/in/denied', 'no', { qos: 1 })
    await upPub.publishAsync('site/in/ok/1', 'yes', { qos: 1 })
    t.equal((await got).payload.toString(), 'yes', 'what the ACL lets bridge:up write arrives')
    t.equal(b.gateway.stats.admitted['bridge-in'], 1, 'counted as bridge-in; the refused one was not')
    t.equal(b.gateway.stats.dropped.aclDenied, 1, 'the refused one is counted as aclDenied')
  }
}

t.test('every source in SOURCES has a case here', async (t) => {
  t.same(Object.keys(cases).sort(), [...SOURCES].sort())
})
for (const source of SOURCES) t.test(`source ${source} goes through admit`, cases[source])
