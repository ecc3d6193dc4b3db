// SIGHUP rereads the users and ACL files, as Mosquitto does: new rules and users apply
// at once, a removed user's token stops working, and a bad file changes nothing.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import WebSocket from 'ws'
import { startCli, type RunningCli } from '../helpers/cli.js'
import { addUser, removeUser } from '../../src/core/policy/users.js'

const dir = mkdtempSync(join(tmpdir(), 'fusion-reload-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const usersFile = join(dir, 'users')
const aclFile = join(dir, 'acl')
await addUser(usersFile, 'alice', 'alice-pw')
await addUser(usersFile, 'bob', 'bob-pw')
writeFileSync(aclFile, 'user alice\ntopic readwrite a/#\n\nuser bob\ntopic readwrite chat/#\n')

/** The CONNACK return code MQTT.js sees for these credentials (0 = accepted). */
function connack (url: string, username: string, password: string): Promise<number> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { username, password, reconnectPeriod: 0, connectTimeout: 5000 })
    c.once('connect', () => { resolve(0); c.end(true) })
    c.once('error', (err) => { resolve(Number((err as { code?: number }).code ?? -1)); c.end(true) })
  })
}

/** The SUBACK return code for one filter, as alice. */
async function subackAsAlice (url: string, filter: string): Promise<number> {
  const c = await mqtt.connectAsync(url, { username: 'alice', password: 'alice-pw', reconnectPeriod: 0 })
  try {
    try {
      return (await c.subscribeAsync(filter, { qos: 0 }))[0]?.qos ?? -1
    } catch (err) {
      // MQTT.js rejects a SUBACK of 0x80; the packet says what was granted.
      const g = (err as { packet?: { granted?: Array<number | { qos: number }> } }).packet?.granted?.[0]
      if (g === undefined) throw err
      return typeof g === 'number' ? g : g.qos
    }
  } finally {
    await c.endAsync(true)
  }
}

/** Sends SIGHUP and waits for the line that answers it. */
async function hup (gw: RunningCli, expect: RegExp): Promise<string> {
  const before = gw.stderr().length
  gw.proc.kill('SIGHUP')
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    const said = gw.stderr().slice(before)
    if (expect.test(said)) return said
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no ${expect} after SIGHUP; stderr: ${gw.stderr().slice(before)}`)
}

/** What /ws with this token gets: the close code (1008 when refused) or 'open'. */
function hubWith (wsUrl: string, token: string): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`)
    ws.on('message', (d) => { if (JSON.parse(d.toString()).type === 'welcome') { resolve('open'); ws.terminate() } })
    ws.on('close', (code) => resolve(code))
    ws.on('error', () => {})
  })
}

t.test('SIGHUP reloads users and rules; a bad file leaves both as they were', async (t) => {
  const gw = await startCli(t, ['--memory', '--users', usersFile, '--acl', aclFile])
  t.equal(await subackAsAlice(gw.urls.mqtt, 'b/#'), 0x80, 'before: alice may not read b/#')
  t.equal(await connack(gw.urls.mqtt, 'carol', 'carol-pw'), 4, 'before: carol is unknown (CONNACK 4)')
  const login = await fetch(`${gw.urls.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob', password: 'bob-pw' }) })
  const bobToken = ((await login.json()) as { token: string }).token
  t.equal(await hubWith(gw.urls.ws, bobToken), 'open', 'before: bob\'s token opens /ws')

  // Bob is connected on both kinds of door when he is removed.
  const bobMqtt = await mqtt.connectAsync(gw.urls.mqtt, { username: 'bob', password: 'bob-pw', reconnectPeriod: 0 })
  const bobMqttClosed = new Promise<void>((resolve) => bobMqtt.once('close', () => resolve()))
  const bobHub = new WebSocket(`${gw.urls.ws}?token=${encodeURIComponent(bobToken)}`)
  const bobFrames: Array<{ type: string, code?: string }> = []
  bobHub.on('message', (d) => bobFrames.push(JSON.parse(d.toString())))
  const bobHubClosed = new Promise<number>((resolve) => bobHub.once('close', (code) => resolve(code)))
  await new Promise((resolve) => bobHub.once('open', resolve))
  const aliceMqtt = await mqtt.connectAsync(gw.urls.mqtt, { username: 'alice', password: 'alice-pw', reconnectPeriod: 0 })
  t.teardown(() => aliceMqtt.endAsync(true))

  writeFileSync(aclFile, 'user alice\ntopic readwrite a/#\ntopic read b/#\n\nuser carol\ntopic readwrite chat/#\n')
  await addUser(usersFile, 'carol', 'carol-pw')
  removeUser(usersFile, 'bob')
  const said = await hup(gw, /reloaded/)
  t.match(said, /reloaded --users .*: 2 user\(s\); --acl /, 'the gateway says what it reloaded')
  t.equal(await subackAsAlice(gw.urls.mqtt, 'b/#'), 0, 'after: alice may read b/#')
  t.equal(await connack(gw.urls.mqtt, 'carol', 'carol-pw'), 0, 'after: carol logs in')
  t.equal(await connack(gw.urls.mqtt, 'bob', 'bob-pw'), 4, 'after: bob cannot log in')
  t.equal(await hubWith(gw.urls.ws, bobToken), 1008, 'after: bob\'s token, still unexpired, is refused (1008)')
  t.equal(await bobHubClosed, 1008, 'bob\'s open /ws connection was closed with 1008')
  t.match(bobFrames.at(-1), { type: 'error', code: 'NOT_AUTHORIZED' }, 'after an error frame saying why')
  await bobMqttClosed
  t.pass('bob\'s MQTT connection was closed')
  t.match(said, /closed 2 connection\(s\) of removed users/, 'and the gateway says so')
  t.equal(aliceMqtt.connected, true, 'alice\'s connection stays')

  writeFileSync(aclFile, 'user alice\ntopic readwrite a/#\nallow everything\n') // would take b/# away if it were applied
  const bad = await hup(gw, /nothing reloaded/)
  t.match(bad, new RegExp(`nothing reloaded, the previous users and rules stay: .*${aclFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`), 'a bad ACL file: one line naming it')
  t.equal(await subackAsAlice(gw.urls.mqtt, 'b/#'), 0, 'and the previous rules still hold')
  t.equal(await connack(gw.urls.mqtt, 'carol', 'carol-pw'), 0, 'and the users too')
  t.equal(gw.proc.exitCode, null, 'the gateway keeps running')
})

t.test('SIGHUP without --users or --acl says there is nothing to reload, and keeps serving', async (t) => {
  const gw = await startCli(t, ['--memory'])
  await hup(gw, /nothing to reload/)
  t.equal(await connack(gw.urls.mqtt, 'anyone', 'x'), 0, 'still serving')
})

t.test('SIGHUP: subscriptions the new rules refuse are dropped, on MQTT and on /ws', async (t) => {
  const users = join(dir, 'users-2')
  const acl = join(dir, 'acl-2')
  await addUser(users, 'alice', 'alice-pw')
  await addUser(users, 'pub', 'pub-pw')
  writeFileSync(acl, 'user alice\ntopic read s/#\ntopic read a/#\ntopic readwrite chat/#\n\nuser pub\ntopic write #\n')
  const gw = await startCli(t, ['--memory', '--users', users, '--acl', acl])
  const alice = await mqtt.connectAsync(gw.urls.mqtt, { username: 'alice', password: 'alice-pw', reconnectPeriod: 0 })
  t.teardown(() => alice.endAsync(true))
  await alice.subscribeAsync({ 's/#': { qos: 1 }, 'a/#': { qos: 1 } })
  const got: string[] = []
  alice.on('message', (topic) => got.push(topic))
  const login = await fetch(`${gw.urls.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'alice-pw' }) })
  const token = ((await login.json()) as { token: string }).token
  const hub = new WebSocket(`${gw.urls.ws}?token=${encodeURIComponent(token)}&room=r`)
  t.teardown(() => hub.terminate())
  const frames: Array<Record<string, unknown>> = []
  hub.on('message', (d) => frames.push(JSON.parse(d.toString())))
  await new Promise((resolve) => hub.once('open', resolve))
  hub.send(JSON.stringify({ type: 'subscribe', topic: 's/+', id: 'sub1' }))
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 100 && !ok(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    if (!ok()) throw new Error(`no ${what}`)
  }
  await until('ack of the /ws subscribe', () => frames.some((f) => f.type === 'ack' && f.id === 'sub1'))

  writeFileSync(acl, 'user alice\ntopic read a/#\ntopic readwrite chat/#\n\nuser pub\ntopic write #\n')
  const said = await hup(gw, /reloaded/)
  t.match(said, /revoked 2 subscription\(s\) the rules no longer allow/, 'the gateway says how many it revoked')
  await until('the /ws error frame', () => frames.some((f) => f.type === 'error' && f.code === 'ACL_DENIED'))
  t.match(frames.find((f) => f.type === 'error'), { code: 'ACL_DENIED', message: /s\/\+ is no longer allowed/ }, '/ws: an error frame names the dropped filter')

  const pub = await mqtt.connectAsync(gw.urls.mqtt, { username: 'pub', password: 'pub-pw', reconnectPeriod: 0 })
  t.teardown(() => pub.endAsync(true))
  await pub.publishAsync('s/x', 'secret', { qos: 1 })
  await pub.publishAsync('a/x', 'fine', { qos: 1 })
  await until('a/x on MQTT', () => got.includes('a/x'))
  t.same(got, ['a/x'], 'MQTT: s/x no longer arrives, a/x still does')
  t.equal(frames.filter((f) => f.type === 'message' && f.topic === 's/x').length, 0, '/ws: s/x no longer arrives')
  t.equal(hub.readyState, WebSocket.OPEN, '/ws: the connection stays (its room is still allowed)')
})
