// Issue 13 item 9 over the real doors: password guesses spread over many user names from
// one address are limited on every door together (MQTT/TCP, /mqtt, POST /api/login).
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { generate } from 'mqtt-packet'
import { startGateway } from '../helpers/gateway.js'
import { addUser } from '../../src/core/policy/users.js'
import { LOGIN_FAILURES_PER_ADDRESS } from '../../src/core/policy/login-throttle.js'
import { portOf, postJson, RawConn } from '../helpers/security.js'

const dir = mkdtempSync(join(tmpdir(), 'fusion-login-addr-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const usersFile = join(dir, 'users')
await addUser(usersFile, 'alice', 'alice-pw')

/** The CONNACK return code a raw CONNECT gets on the MQTT/TCP door. */
async function connack (mqttUrl: string, username: string, password: string): Promise<number | undefined> {
  const c = new RawConn(portOf(mqttUrl))
  try {
    await c.opened
    c.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `c-${username}`, keepalive: 30, username, password: Buffer.from(password) } as never))
    const b = await c.waitBytes(4, 5000)
    return b[0] === 0x20 ? b[3] : undefined
  } finally {
    c.destroy()
  }
}

/** The CONNACK code MQTT.js gets over /mqtt (0 when connected). */
function wsConnack (url: string, username: string, password: string): Promise<number> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { username, password, reconnectPeriod: 0, connectTimeout: 5000 })
    const done = (code: number): void => { client.end(true); resolve(code) }
    client.once('connect', () => done(0))
    client.once('error', (err) => done(Number((err as { code?: number }).code ?? -1)))
    client.once('close', () => done(-1))
  })
}

t.test('guesses over many names from one address: every door waits, then the right password waits too', async (t) => {
  const { urls } = await startGateway(t, { users: usersFile })
  const burst = LOGIN_FAILURES_PER_ADDRESS.burst
  // Round robin over the three doors and a new name for every guess, so no name reaches
  // its own limit: only the address can stop this. Refused means CONNACK 3 or HTTP 429.
  const guess = async (n: number): Promise<'checked' | 'refused'> => {
    const door = n % 3
    const name = `user-${n}`
    if (door === 0) return (await connack(urls.mqtt, name, 'guess')) === 4 ? 'checked' : 'refused'
    if (door === 1) return (await wsConnack(urls['mqtt-ws'], name, 'guess')) === 4 ? 'checked' : 'refused'
    return (await postJson(`${urls.http}/api/login`, { username: name, password: 'guess' })).status === 401 ? 'checked' : 'refused'
  }
  const t0 = Date.now()
  let checked = 0
  let n = 0
  while (n < burst + 20 && (await guess(n++)) === 'checked') checked++
  const seconds = (Date.now() - t0) / 1000
  t.ok(n < burst + 20, `guessing stopped after ${checked} checked guesses in ${seconds.toFixed(1)} s`)
  t.ok(checked >= burst && checked <= burst + Math.ceil(seconds) * LOGIN_FAILURES_PER_ADDRESS.perSec + 1, `${checked} guesses were checked: the burst of ${burst} plus one a second`)
  // Right after a refusal the address has less than one guess left; a right password is
  // refused too (a refusal says nothing about a guess). Retried after another refused guess
  // in the rare case the bucket refilled in between.
  let refusedAll = false
  for (let k = 0; k < 3 && !refusedAll; k++) {
    for (let g = 0; g < 5 && (await guess(n++)) === 'checked'; g++) { /* a token came back meanwhile */ }
    const [tcp, ws, http] = await Promise.all([
      connack(urls.mqtt, 'alice', 'alice-pw'),
      wsConnack(urls['mqtt-ws'], 'alice', 'alice-pw'),
      postJson(`${urls.http}/api/login`, { username: 'alice', password: 'alice-pw' })
    ])
    refusedAll = tcp === 3 && ws === 3 && http.status === 429 && /from this address/.test(String(http.json.message))
    t.comment(`right password right after a refusal: MQTT/TCP CONNACK ${tcp}, /mqtt CONNACK ${ws}, HTTP ${http.status}`)
  }
  t.ok(refusedAll, 'the right password waits too on every door: CONNACK 3 on MQTT/TCP and /mqtt, 429 RATE_LIMITED on POST /api/login')
  // One failure is forgiven a second: then the right password works again.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal(await connack(urls.mqtt, 'alice', 'alice-pw'), 0, 'a second later the right password works')
})
