// Redis killed and restarted under traffic: the nodes keep their clients, say 503
// while it is away, and come back; QoS 1 loses nothing, QoS 0 loses what is counted.
import t from 'tap'
import mqtt from 'mqtt'
import { openHub, openMqtt, type HubFrame } from '../helpers/gateway.js'
import { blockRedis, health, needs, startTwoNodes, until } from '../helpers/cluster.js'

if (needs(t, 'redis-server', 'redis-server')) await main()

async function main (): Promise<void> {
  const { redis, a, b } = await startTwoNodes(t)

  t.test('Redis SIGKILLed and restarted during traffic', async (t) => {
    const N = 150 // per QoS level, one of each every PACE_MS
    const PACE_MS = 20
    const KILL_AT = 40 // messages sent before Redis dies
    const DOWN_FOR = 40 // messages sent while it is away (about 0.8 s)

    // On A: a /ws client that must survive, and an MQTT subscriber that counts.
    const room = 'faults'
    const hub = await openHub(t, a.urls.ws, { name: 'stays', room })
    await hub.waitJson('history')
    const sub = await openMqtt(t, a.urls.mqtt, { clientId: `faults-sub-${process.pid}` })
    const q1 = new Map<number, number>()
    const q0 = new Set<number>()
    let endSeen = false
    sub.on('message', (topic, payload) => {
      if (payload.toString() === 'end') { endSeen = true; return }
      const n = Number(payload.toString())
      if (topic === 'load/q1') q1.set(n, (q1.get(n) ?? 0) + 1)
      else if (topic === 'load/q0') q0.add(n)
    })
    await sub.subscribeAsync({ 'load/q1': { qos: 1 }, 'load/q0': { qos: 0 } })

    // Said on B before the outage: its seq is the floor for what comes after.
    const onB = await openHub(t, b.urls.ws, { name: 'talker', room })
    await onB.waitJson('history')
    t.equal((await onB.request({ type: 'chat', text: 'before' })).type, 'ack')
    const before = await hub.waitMessage(`chat/${room}`, (m) => m.payload === 'before')

    // On B: one publisher, reconnecting if it must (it should not have to).
    const pub = mqtt.connect(b.urls.mqtt, { clientId: `faults-pub-${process.pid}`, reconnectPeriod: 500 })
    t.teardown(() => pub.end(true))
    await new Promise<void>((resolve, reject) => { pub.once('connect', () => resolve()); pub.once('error', reject) })
    let disconnects = 0
    pub.on('close', () => { disconnects++ })

    let sent = 0
    const sentReached = (n: number): Promise<void> => until(`${n} messages sent`, () => sent >= n, 20_000, 10)
    const acks: Array<Promise<unknown>> = []
    const chatAcks: Array<Promise<unknown>> = []
    let sawDown: Record<string, unknown> | undefined
    let downStatus = 0
    let sentAtKill = 0

    const fault = (async () => {
      await sentReached(KILL_AT)
      // Redis stalls first, so publishes are in flight (sent, unanswered) when it dies.
      const stalled = blockRedis(redis.port, 1000)
      await sentReached(sent + 8)
      sentAtKill = sent
      await redis.kill()
      await stalled
      await until('A to say Redis is down', async () => {
        const h = await health(a)
        if (h.status !== 503) return false
        sawDown = h.body
        downStatus = h.status
        return true
      }, 5000, 50)
      // A chat line over /ws while Redis is away is refused, not lost in silence.
      const refused = await onB.request({ type: 'chat', text: 'while down' })
      t.match(refused, { type: 'error', code: 'STORE_FAILED' }, 'a /ws chat line while Redis is down gets STORE_FAILED')
      await sentReached(KILL_AT + DOWN_FOR)
      await redis.start()
      await until('both nodes healthy again', async () => (await health(a)).status === 200 && (await health(b)).status === 200, 15_000, 50)
    })()

    const t0 = Date.now()
    for (let i = 0; i < N; i++) {
      acks.push(pub.publishAsync('load/q1', String(i), { qos: 1 }))
      pub.publish('load/q0', String(i), { qos: 0 })
      // Every 10th, a chat line at QoS 1 over MQTT: it must reach the shared history.
      if (i % 10 === 0) chatAcks.push(pub.publishAsync(`chat/${room}`, `mqtt ${i}`, { qos: 1 }))
      sent = i + 1
      await new Promise((resolve) => setTimeout(resolve, PACE_MS)) // load pacing, not synchronisation
    }
    await fault
    let timer: NodeJS.Timeout | undefined
    const settled = await Promise.race([
      Promise.allSettled([...acks, ...chatAcks]),
      new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), 20_000) })
    ])
    clearTimeout(timer)
    t.not(settled, 'timeout', 'every QoS 1 publish was answered within 20 s')
    if (settled === 'timeout') t.comment(`node A: ${a.stderr()}\nnode B: ${b.stderr()}`)
    const acked = (settled === 'timeout' ? [] : settled.slice(0, N)).filter((r) => r.status === 'fulfilled').length
    t.equal(acked, N, `all ${N} QoS 1 messages were acknowledged (PUBACK held while Redis was away)`)

    // A last QoS 1 message: once it is on A, everything sent before it has arrived or never will.
    await pub.publishAsync('load/q1', 'end', { qos: 1 })
    await until('the end marker on A', () => endSeen, 10_000, 20)
    const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !q1.has(i))
    const dups = [...q1.values()].reduce((n, c) => n + c - 1, 0)
    t.same(missing, [], 'QoS 1: nothing lost')
    t.equal(dups, 0, 'QoS 1: nothing twice')
    t.equal(disconnects, 0, 'the publisher on B kept its connection')

    const stats = await (await fetch(`${b.urls.http}/api/stats`)).json() as { cluster?: { counters?: Record<string, number> } }
    const dropped = stats.cluster?.counters?.droppedQos0 ?? -1
    const lost = N - q0.size
    t.comment(`outage: ${JSON.stringify(sawDown)} (HTTP ${downStatus})`)
    t.comment(`QoS 0: ${lost}/${N} lost while Redis was away; node B counted ${dropped} dropped; counters ${JSON.stringify(stats.cluster?.counters)}; run took ${Date.now() - t0} ms`)
    t.match(sawDown, { status: 'unavailable', redis: 'down' }, 'A said 503 {"status":"unavailable","redis":"down"} while Redis was away')
    t.ok(lost > 0, 'some QoS 0 messages were lost while Redis was down (MQTT QoS 0 is dropped, not queued)')
    t.equal(lost, dropped, 'every QoS 0 message lost is one node B counted as dropped')
    t.ok(q0.has(N - 1), 'QoS 0 flows again after the outage')
    t.ok((stats.cluster?.counters?.resent ?? 0) > 0, 'messages in flight when Redis died were sent again after it came back')

    // The /ws client on A never left, and hears B again; numbering went on above the old seq.
    t.equal(hub.ws.readyState, hub.ws.OPEN, 'the /ws client on A kept its connection')
    t.equal((await onB.request({ type: 'chat', text: 'after' })).type, 'ack')
    const after = await hub.waitMessage(`chat/${room}`, (m) => m.payload === 'after')
    t.ok((after.seq as number) > (before.seq as number), `seq went on from ${before.seq as number} to ${after.seq as number}, although Redis lost its data`)
    const history = await (await fetch(`${a.urls.http}/api/history?topic=chat/${room}&limit=100`)).json() as { messages: HubFrame[] }
    const lines = history.messages.map((m) => m.payload as string)
    const mqttLines = Array.from({ length: N / 10 }, (_, i) => `mqtt ${i * 10}`)
    const kept = mqttLines.filter((l) => lines.includes(l))
    t.comment(`history after the outage: ${lines.length} lines; QoS 1 chat lines kept ${kept.length}/${mqttLines.length} (those acked before the kill went with Redis's data)`)
    const afterKill = mqttLines.filter((_, i) => i * 10 >= sentAtKill)
    t.same(afterKill.filter((l) => !lines.includes(l)), [], 'every QoS 1 chat line sent from the kill on is in the shared history')
    t.equal(new Set(history.messages.map((m) => m.seq)).size, history.messages.length, 'no seq twice in the history')
    t.equal(lines.filter((l) => l === 'while down').length, 0, 'the refused line is not in the history')
  })

  t.test('a node whose Redis is gone still stops promptly on SIGTERM', async (t) => {
    // Clients that must be closed: their unsubscribes cannot reach Redis.
    const sub = await openMqtt(t, a.urls.mqtt, { clientId: `faults-last-${process.pid}`, clean: false })
    await sub.subscribeAsync('last/#', { qos: 1 })
    const hub = await openHub(t, a.urls.ws, { name: 'last', room: 'last' })
    await hub.waitJson('history')
    await redis.kill()
    await until('A to say Redis is down', async () => (await health(a)).status === 503, 5000, 50)
    const stopped = await a.stop('SIGTERM', 10_000)
    t.equal(stopped.code, 0, 'exit code 0')
    t.ok(stopped.ms < 5000, `stopped in ${stopped.ms} ms`)
    t.equal(await hub.closed, 1001, '/ws clients were told 1001')
  })
}
