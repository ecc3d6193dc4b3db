// @ts-check
// The cost of the policy checks on the hot path (issue 5), measured in one run:
// messages a second through the gateway with auth + an ACL file + the message-rate
// buckets on, versus everything off. Same workload both ways, rounds interleaved so a
// busy machine hurts both alike:
//  - 2 MQTT/TCP publishers (QoS 0, batches of 200) and 1 /ws publisher (publish frames
//    with ids, at most 64 unacknowledged), 64-byte payloads, each checked by the ACL
//    (and, when on, its token bucket);
//  - 1 MQTT subscriber on bench/# counts what arrives; the rate is what it receives.
// Then the checks alone, in this process: nanoseconds per ACL decision and per bucket take.
// Bounded: --seconds per round (default 4), --rounds (default 3), at most 2,000,000
// messages per publisher per round, 10 minutes in all.
// Usage: npm run build && node bench/policy.mjs [--seconds 4] [--rounds 3]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import mqtt from 'mqtt'
import { startGateway } from './lib/servers.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name, dflt) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : dflt }
const SECONDS = arg('seconds', 4)
const ROUNDS = arg('rounds', 3)
const MAX_PER_PUBLISHER = 2_000_000
const BATCH = 200
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

const dir = mkdtempSync(join(tmpdir(), 'fusion-bench-policy-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const usersFile = join(dir, 'users')
const aclFile = join(dir, 'acl')
const { addUser } = await import(join(root, 'dist/core/policy/users.js'))
await addUser(usersFile, 'bench', 'bench-pw')
for (let i = 0; i < 50; i++) await addUser(usersFile, `user${i}`, `pw${i}`).catch(() => {})
// A realistic rules file: the bench user's own rules, a deny, other users, patterns.
writeFileSync(aclFile, [
  'topic read $SYS/#',
  'topic read chat/public',
  'user bench',
  'topic readwrite chat/#',
  'topic readwrite bench/#',
  'topic deny bench-admin/#',
  ...Array.from({ length: 50 }, (_, i) => `user user${i}\ntopic readwrite home/user${i}/#\ntopic read sensors/+/temp`),
  'pattern readwrite home/%u/#',
  'pattern write presence/%c',
  'pattern read devices/%c/cmd',
  'pattern write devices/%c/state'
].join('\n') + '\n')

/** One round: messages a second the subscriber receives while every publisher pushes. */
async function round (args, auth) {
  const gw = await startGateway(root, undefined, ['--memory', ...args])
  const creds = auth ? { username: 'bench', password: 'bench-pw' } : {}
  let token = ''
  if (auth) {
    const res = await fetch(`${gw.urls.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(creds) })
    token = (await res.json()).token
  }
  const sub = await mqtt.connectAsync(gw.urls.mqtt, { clientId: 'bench-sub', reconnectPeriod: 0, ...creds })
  await sub.subscribeAsync('bench/#')
  let received = 0
  sub.on('message', () => { received++ })
  const pubs = await Promise.all([0, 1].map((i) => mqtt.connectAsync(gw.urls.mqtt, { clientId: `bench-pub-${i}`, reconnectPeriod: 0, ...creds })))
  const ws = new WebSocket(`${gw.urls.ws}?name=bench&room=bench${token ? `&token=${token}` : ''}`)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const payload = Buffer.alloc(64, 0x62)
  let stop = false
  const mqttLoop = async (c, i) => {
    for (let n = 0; n < MAX_PER_PUBLISHER && !stop; n += BATCH) {
      for (let k = 0; k < BATCH - 1; k++) c.publish(`bench/${i}/${k % 16}`, payload)
      await c.publishAsync(`bench/${i}/x`, payload)
    }
  }
  // Closed loop: at most WINDOW frames unanswered, so the /ws publisher goes as fast as
  // the gateway answers and never queues work inside it.
  const WINDOW = 64
  let sent = 0
  let answered = 0
  let wake = () => {}
  ws.on('message', () => { answered++; wake() })
  const frame = (n) => JSON.stringify({ type: 'publish', topic: 'bench/ws/x', payload: payload.toString(), id: String(n) })
  const wsLoop = async () => {
    while (sent < MAX_PER_PUBLISHER && !stop) {
      while (sent - answered < WINDOW && !stop) ws.send(frame(sent++))
      await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 100) })
    }
  }
  const loops = [...pubs.map(mqttLoop), wsLoop()]
  // Warm up one second, then count.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const r0 = received
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
  const rate = (received - r0) / ((performance.now() - t0) / 1000)
  stop = true
  // A publisher stuck on a dead connection must not hold the bench.
  await Promise.race([Promise.allSettled(loops), new Promise((resolve) => setTimeout(resolve, 5000).unref())])
  ws.terminate()
  await Promise.allSettled([sub.endAsync(true), ...pubs.map((p) => p.endAsync(true))])
  await gw.stop()
  return rate
}

const configs = [
  { name: 'policy off (anonymous, default ACL, no rate limit)', args: ['--msg-rate', '0'], auth: false },
  { name: 'auth + ACL file (55 users, 4 patterns) + rate buckets', args: ['--users', usersFile, '--acl', aclFile, '--msg-rate', '1000000', '--token-secret', 'bench-secret-bench-secret'], auth: true }
]
// A stuck step ends the bench instead of holding it.
setTimeout(() => { console.error('bench/policy.mjs: gave up after 10 minutes'); process.exit(1) }, 600_000).unref()
const results = configs.map(() => /** @type {number[]} */ ([]))
for (let r = 0; r < ROUNDS; r++) {
  for (let c = 0; c < configs.length; c++) {
    const rate = await round(configs[c].args, configs[c].auth)
    results[c].push(rate)
    console.log(`round ${r + 1}: ${configs[c].name}: ${Math.round(rate)} msg/s`)
  }
}
const off = median(results[0])
const on = median(results[1])
console.log('')
console.log(`policy off: ${Math.round(off)} msg/s (median of ${ROUNDS})`)
console.log(`policy on:  ${Math.round(on)} msg/s (median of ${ROUNDS})`)
console.log(`cost: ${((1 - on / off) * 100).toFixed(1)}% of throughput (negative: within the noise)`)

// The checks alone: what each message pays on the hot path.
const { createFileAcl, parseAclRules } = await import(join(root, 'dist/core/policy/acl-file.js'))
const { createDefaultAcl } = await import(join(root, 'dist/core/policy/acl.js'))
const { rateGateFactory } = await import(join(root, 'dist/core/policy/token-bucket.js'))
const { readFileSync } = await import('node:fs')
const fileAcl = createFileAcl(parseAclRules(readFileSync(aclFile, 'utf8')))
const defaultAcl = createDefaultAcl()
const who = { clientId: 'bench-pub-0', username: 'bench', door: 'mqtt' }
const N = 1_000_000
const timeIt = (fn) => {
  for (let i = 0; i < 10_000; i++) fn(i)
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) fn(i)
  return Number(process.hrtime.bigint() - t0) / N
}
const topics = Array.from({ length: 16 }, (_, k) => `bench/0/${k}`)
const nsDefault = timeIt((i) => defaultAcl.checkPublish(who, topics[i & 15]))
const nsFile = timeIt((i) => fileAcl.checkPublish(who, topics[i & 15]))
const gate = rateGateFactory(10_000_000)()
const nsBucket = timeIt(() => gate.take())
console.log('')
console.log(`per message, in process: default ACL ${nsDefault.toFixed(0)} ns, ACL file ${nsFile.toFixed(0)} ns, token bucket ${nsBucket.toFixed(0)} ns`)
