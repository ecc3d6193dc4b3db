// Two gateway nodes on one Redis behave as one topic space (issue 8).
import t from 'tap'
import { spawn } from 'node:child_process'
import mqtt from 'mqtt'
import type { RunningCli } from '../helpers/cli.js'
import { openHub, openMqtt, type HubClient, type HubFrame } from '../helpers/gateway.js'
import { health, needs, startTwoNodes } from '../helpers/cluster.js'

if (needs(t, 'redis-server', 'redis-server')) await main()

async function main (): Promise<void> {
  const { a, b } = await startTwoNodes(t)

  const mqttPort = (node: RunningCli): string => new URL(node.urls.mqtt).port

  function mosquittoPub (node: RunningCli, topic: string, message: string, extra: string[] = []): Promise<number | null> {
    return new Promise((resolve) => {
      const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', mqttPort(node), '-t', topic, '-m', message, '-q', '1', ...extra], { stdio: 'ignore' })
      p.once('exit', (code) => resolve(code))
    })
  }

  /** Messages on `topic` a hub client got, by payload. */
  const payloads = (c: HubClient, topic: string): string[] => c.json('message').filter((m) => m.topic === topic).map((m) => m.payload as string)

  t.test('both nodes are healthy and see each other', async (t) => {
    for (const node of [a, b]) {
      const h = await health(node)
      t.equal(h.status, 200)
      t.match(h.body, { status: 'ok', redis: 'up', nodes: 2, store: 'redis' })
    }
    t.not((await health(a)).body.node, (await health(b)).body.node, 'each node has its own broker id')
  })

  t.test('mosquitto_pub on B reaches a /ws client on A, exactly once', async (t) => {
    if (!needs(t, 'mosquitto_pub', 'mosquitto-clients')) return
    const c = await openHub(t, a.urls.ws, { name: 'watcher', room: 'x-mosq' })
    await c.waitJson('history')
    await c.subscribe('sensors/+/temp')
    t.equal(await mosquittoPub(b, 'sensors/k1/temp', '21.5'), 0, 'mosquitto_pub exited 0')
    t.equal(await mosquittoPub(b, 'sensors/k1/temp', 'end'), 0)
    await c.waitMessage('sensors/k1/temp', (m) => m.payload === 'end')
    t.same(payloads(c, 'sensors/k1/temp'), ['21.5', 'end'], 'each once, in order')
    const m = c.json('message').find((f) => f.payload === '21.5') as HubFrame
    t.match(m, { via: 'mqtt', qos: 1, retain: false })
  })

  t.test('/ws chat on B reaches /ws on A and an MQTT subscriber on A, each exactly once; presence crosses', async (t) => {
    const room = 'x-chat'
    const topic = `chat/${room}`
    const onA = await openHub(t, a.urls.ws, { name: 'anna', room })
    await onA.waitJson('history')
    const sub = await openMqtt(t, a.urls.mqtt, { clientId: `x-chat-sub-${process.pid}` })
    const got: string[] = []
    sub.on('message', (tp, payload) => { if (tp === topic) got.push(JSON.parse(payload.toString()).text) })
    await sub.subscribeAsync(topic, { qos: 1 })
    const onB = await openHub(t, b.urls.ws, { name: 'bert', room })
    await onB.waitJson('history')
    const seen = await onA.waitJson('presence', (p) => p.name === 'bert' && p.status === 'online')
    t.equal(seen.via, 'ws', 'A sees bert (on B) come online')

    for (const text of ['hello from B', 'second', 'end']) t.equal((await onB.request({ type: 'chat', text })).type, 'ack')
    await onA.waitMessage(topic, (m) => m.payload === 'end')
    await onB.waitMessage(topic, (m) => m.payload === 'end')
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`MQTT subscriber got ${JSON.stringify(got)}`)), 5000)
      const check = (): void => { if (got.includes('end')) { clearTimeout(timer); sub.off('message', check); resolve() } }
      sub.on('message', check)
      check()
    })
    const want = ['hello from B', 'second', 'end']
    t.same(payloads(onA, topic), want, '/ws on A: each once, in order')
    t.same(payloads(onB, topic), want, 'the sender on B sees its own, once')
    t.same(got, want, 'MQTT on A: each once, in order')
    const seqA = onA.json('message').filter((m) => m.topic === topic).map((m) => m.seq)
    const seqB = onB.json('message').filter((m) => m.topic === topic).map((m) => m.seq)
    t.same(seqA, seqB, 'both nodes deliver the same seq')
    t.ok(seqA.every((s, i) => typeof s === 'number' && (i === 0 || s === seqA[i - 1] + 1)), `seq ${seqA.join(',')} counts up by one`)
    const tsA = onA.json('message').filter((m) => m.topic === topic).map((m) => m.ts)
    t.same(tsA, onB.json('message').filter((m) => m.topic === topic).map((m) => m.ts), 'and the same ts')
  })

  t.test('history is shared: A has what was said on B, and since replays across nodes', async (t) => {
    const room = 'x-hist'
    const topic = `chat/${room}`
    const onA = await openHub(t, a.urls.ws, { name: 'ha', room })
    const onB = await openHub(t, b.urls.ws, { name: 'hb', room })
    await Promise.all([onA.waitJson('history'), onB.waitJson('history')])
    for (let i = 0; i < 6; i++) await (i % 2 ? onA : onB).request({ type: 'chat', text: `m${i}` })
    await onA.waitMessage(topic, (m) => m.payload === 'm5')
    const live = onA.json('message').filter((m) => m.topic === topic)
    const byHttp = async (node: RunningCli, q: string): Promise<{ messages: HubFrame[], lastSeq: number }> =>
      await (await fetch(`${node.urls.http}/api/history?topic=${encodeURIComponent(topic)}${q}`)).json() as { messages: HubFrame[], lastSeq: number }
    const hA = await byHttp(a, '')
    const hB = await byHttp(b, '')
    t.same(hA.messages.map((m) => m.payload), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'], 'A keeps all six, B\'s included, oldest first')
    t.same(hA.messages, hB.messages, 'B has the very same records')
    t.same(hA.messages.map((m) => m.seq), live.map((m) => m.seq), 'with the seq the live frames had')
    t.equal(hA.lastSeq, live[5]?.seq)
    const cut = live[2]?.seq as number
    t.same((await byHttp(b, `&since=${cut}`)).messages.map((m) => m.payload), ['m3', 'm4', 'm5'], 'since on B, from a seq seen on A')
    const back = await openHub(t, a.urls.ws, { name: 'late', room, since: String(cut) })
    const h = await back.waitJson('history')
    t.same((h.messages as HubFrame[]).map((m) => m.payload), ['m3', 'm4', 'm5'], 'since on connect to A')
  })

  t.test('retained messages cross nodes', async (t) => {
    const pub = await openMqtt(t, b.urls.mqtt, { clientId: `x-ret-pub-${process.pid}` })
    await pub.publishAsync('x-ret/lamp/state', 'on', { qos: 1, retain: true })
    const c = await openHub(t, a.urls.ws, { name: 'r', room: 'x-ret' })
    await c.waitJson('history')
    await c.subscribe('x-ret/+/state')
    const m = await c.waitMessage('x-ret/lamp/state')
    t.match(m, { payload: 'on', retain: true }, '/ws on A gets B\'s retained message')
    const sub = await openMqtt(t, a.urls.mqtt, { clientId: `x-ret-sub-${process.pid}` })
    const arrived = new Promise<{ payload: string, retain: boolean }>((resolve) => sub.once('message', (_tp, payload, packet) => resolve({ payload: payload.toString(), retain: packet.retain })))
    await sub.subscribeAsync('x-ret/#', { qos: 1 })
    t.same(await arrived, { payload: 'on', retain: true }, 'and so does MQTT on A')
  })

  t.test('a persistent QoS 1 session moves from A to B, also when A is killed; B says offline for A\'s clients', async (t) => {
    const clientId = `x-sess-${process.pid}`
    const N = 20
    const first = await openMqtt(t, a.urls.mqtt, { clientId, clean: false })
    await first.subscribeAsync('x-jobs/#', { qos: 1 })
    await first.endAsync()
    const pub = await openMqtt(t, b.urls.mqtt, { clientId: `x-sess-pub-${process.pid}` })
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync(`x-jobs/${i % 3}`, `offline ${i}`, { qos: 1 })))

    // Back on A, online this time: what was queued arrives, then live messages.
    const seen = new Map<string, number>()
    const count = (_tp: string, payload: Buffer): void => { const k = payload.toString(); seen.set(k, (seen.get(k) ?? 0) + 1) }
    const waitFor = (keys: string[], ms: number): Promise<void> => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`missing ${keys.filter((k) => !seen.has(k)).slice(0, 5).join(', ')}`)), ms)
      const check = (): void => { if (keys.every((k) => seen.has(k))) { clearTimeout(timer); clearInterval(poll); resolve() } }
      const poll = setInterval(check, 20)
      check()
    })
    const onA = mqtt.connect(a.urls.mqtt, { clientId, clean: false, reconnectPeriod: 0 })
    t.teardown(() => onA.end(true))
    onA.on('message', count)
    const offline = Array.from({ length: N }, (_, i) => `offline ${i}`)
    await waitFor(offline, 10_000)
    t.pass(`the ${N} queued while offline arrived on A`)

    // A /ws client on A, watched from B: when A dies, B must say it is offline.
    const watcher = await openHub(t, b.urls.ws, { name: 'watcher', room: 'x-ghost' })
    await watcher.waitJson('history')
    const ghost = await openHub(t, a.urls.ws, { name: 'ghost', room: 'x-ghost' })
    await ghost.waitJson('history')
    await watcher.waitJson('presence', (p) => p.name === 'ghost' && p.status === 'online')

    // A device on A with a will, and a listener for it on B.
    const willWatch = await openMqtt(t, b.urls.mqtt, { clientId: `x-will-watch-${process.pid}` })
    await willWatch.subscribeAsync('x-will/#', { qos: 1 })
    const willArrived = new Promise<{ payload: string, ms: number }>((resolve) => {
      willWatch.on('message', (topic, payload) => { if (topic === 'x-will/dev') resolve({ payload: payload.toString(), ms: Date.now() - killedAt }) })
    })
    await openMqtt(t, a.urls.mqtt, { clientId: `x-will-dev-${process.pid}`, will: { topic: 'x-will/dev', payload: Buffer.from('dev lost'), qos: 1, retain: false } })

    const killedAt = Date.now()
    const killed = await a.stop('SIGKILL')
    t.equal(killed.signal, 'SIGKILL', 'node A was killed')
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync(`x-jobs/${i % 3}`, `after kill ${i}`, { qos: 1 })))

    const onB = mqtt.connect(b.urls.mqtt, { clientId, clean: false, reconnectPeriod: 0 })
    t.teardown(() => onB.end(true))
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      onB.once('connect', (p) => resolve(p as { sessionPresent: boolean }))
      onB.once('error', reject)
    })
    onB.on('message', count)
    const afterKill = Array.from({ length: N }, (_, i) => `after kill ${i}`)
    await waitFor(afterKill, 10_000)
    t.pass(`the ${N} queued after A died arrived on B`)
    t.comment(`CONNACK sessionPresent=${connack.sessionPresent}`)
    const dups = [...seen.values()].reduce((n, c) => n + c - 1, 0)
    t.comment(`${seen.size} distinct, ${dups} duplicates (allowed at QoS 1)`)
    await pub.publishAsync('x-jobs/live', 'live on B', { qos: 1 })
    await waitFor(['live on B'], 5000)
    t.pass('and its subscription lives on B: live messages arrive with no new SUBSCRIBE')

    const gone = await watcher.waitJson('presence', (p) => p.name === 'ghost' && p.status === 'offline', 20_000)
    t.equal(gone.via, 'ws', 'B said offline for the /ws client of the killed node')
    const device = watcher.json('presence').filter((p) => p.clientId === clientId)
    t.equal(device.at(-1)?.status, 'online', 'but not for the MQTT client that moved to B')

    // Aedes publishes a dead node's wills once it missed 3 heartbeats, at a check every 4:
    // with the gateway's 5 s heartbeat, 15 to 35 s (Aedes's default 60 s: 3 to 7 minutes).
    const will = await Promise.race([willArrived, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 45_000))])
    t.equal(will?.payload, 'dev lost', 'B published the will of the device that was on the killed node')
    t.ok(will !== undefined && will.ms < 45_000, `within 45 s of the kill (${will ? (will.ms / 1000).toFixed(1) : '-'} s)`)
  })
}
