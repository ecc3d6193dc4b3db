// Issue 13: under hostile load a healthy /ws + MQTT pair keep exchanging messages,
// /api/health answers in < 250 ms and the event-loop lag p99 stays < 50 ms. One attacker
// per door sends the worst inputs we know of for that door's parsers, as fast as the
// gateway takes them (flow-controlled, under its message rate), for a bounded time and
// count: /ws frames of newlines and of deep JSON at the frame limit, MQTT/TCP and /mqtt
// chat publishes of deep JSON at the payload limit plus packets declaring 256 MB, and
// HTTP bodies of deep JSON at the body limit.
import t, { type Test } from 'tap'
import { performance } from 'node:perf_hooks'
import { connect as netConnect, type Socket } from 'node:net'
import { generate } from 'mqtt-packet'
import mqtt from 'mqtt'
import WebSocket from 'ws'
import { openHub, openMqtt, nextMqttMessage } from '../helpers/gateway.js'
import { startCli } from '../helpers/cli.js'
import { DEFAULTS } from '../../src/core/options.js'
import { assertHealthy, portOf } from '../helpers/security.js'
import { LoopLag } from '../helpers/timing.js'

/** How long the attack lasts, and the most inputs each attacker sends. */
const ATTACK_MS = 6000
const MAX_INPUTS = 400
/**
 * Worst-case inputs a second from each attacker. Far under --msg-rate (1000): the rate
 * limit counts messages, not bytes (SECURITY.md, "Not covered yet"), and 1000 frames of
 * half a megabyte a second would measure the machine's bandwidth, not our parsers. At
 * this pace the four attackers send about 8 MB/s of the most expensive inputs we know.
 */
const INPUTS_PER_SEC = 5

/** Resolves when input `n` of an attacker that started at `t0` is due (a paced load, not a wait for an event). */
function due (t0: number, n: number): Promise<void> {
  const at = t0 + (n * 1000) / INPUTS_PER_SEC - Date.now()
  return at > 0 ? new Promise((resolve) => setTimeout(resolve, at)) : Promise.resolve()
}
const HEALTH_BUDGET_MS = 250
const LAG_P99_BUDGET_MS = 50
/** The gateway's whole RSS after the attack (it keeps up to 1000 chat messages of 256 KiB per topic). */
const RSS_LIMIT_MB = 700

function deepJson (bytes: number): string {
  return '{"text":' + '['.repeat(bytes - 8)
}

/** Writes `data`, waiting for the socket to drain when its buffer is full; false once closed. */
function writeDrained (socket: Socket, data: Buffer): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(false)
  if (socket.write(data)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (ok: boolean): void => { socket.off('drain', onDrain); socket.off('close', onClose); resolve(ok) }
    const onDrain = (): void => done(true)
    const onClose = (): void => done(false)
    socket.once('drain', onDrain)
    socket.once('close', onClose)
  })
}

interface Attempt {
  readonly urls: Awaited<ReturnType<typeof startCli>>['urls']
  readonly sent: Record<string, number>
  readonly healthMs: number[]
  readonly roundTrips: number[]
  readonly idle: { maxMs: number, p99Ms: number }
  readonly mine: { maxMs: number, p99Ms: number }
  readonly maxMs: number
  readonly p99Ms: number
  readonly stop: () => Promise<unknown>
}

/** One attack on a fresh gateway, measured; asserts nothing (the test judges the attempts). */
async function attack (t: Test): Promise<Attempt> {
  // The gateway in its own process, as deployed: its /metrics then reads its own loop,
  // not the attackers' (ws masks every client frame in JavaScript here).
  const { urls, stop } = await startCli(t, ['--memory'])
  const opts = DEFAULTS
  const maxFrame = opts.maxPayload * 2 + 4096
  const deadline = Date.now() + ATTACK_MS
  const live = (): boolean => Date.now() < deadline
  const sent = { ws: 0, mqtt: 0, 'mqtt-ws': 0, http: 0, oversized: 0 }

  // /ws: a frame of newlines then one character (the old quadratic trim) and a frame of
  // deep JSON, both at the frame limit, alternately. ws's send callback is the flow control.
  const wsAttack = async (): Promise<void> => {
    const frames = ['\n'.repeat(maxFrame - 1) + 'x', '{"type":"chat","text":' + '['.repeat(maxFrame - 30)]
    const ws = new WebSocket(`${urls.ws}?name=attacker&room=attack`)
    ws.on('error', () => {})
    await new Promise<void>((resolve) => { ws.once('open', () => resolve()); ws.once('close', () => resolve()) })
    const t0 = Date.now()
    while (live() && sent.ws < MAX_INPUTS && ws.readyState === WebSocket.OPEN) {
      await due(t0, sent.ws)
      await new Promise<void>((resolve) => ws.send(frames[sent.ws++ % 2] as string, () => resolve()))
    }
    ws.terminate()
  }

  // MQTT/TCP: chat publishes whose payload is deep JSON at the payload limit (the envelope
  // reader), QoS 0, as fast as the socket drains.
  const mqttTcpAttack = async (): Promise<void> => {
    const socket = netConnect(portOf(urls.mqtt), '127.0.0.1')
    socket.on('error', () => {})
    await new Promise((resolve) => { socket.once('connect', resolve); socket.once('close', resolve) })
    const publish = generate({ cmd: 'publish', topic: 'chat/attack', payload: Buffer.from(deepJson(opts.maxPayload - 64)), qos: 0, retain: false, dup: false } as never)
    await writeDrained(socket, generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'attacker-tcp', keepalive: 60 } as never))
    const t0 = Date.now()
    while (live() && sent.mqtt < MAX_INPUTS && await writeDrained(socket, publish)) await due(t0, ++sent.mqtt)
    socket.destroy()
  }

  // MQTT/TCP, other connections: a fixed header declaring a 256 MB packet, cut at the header.
  const oversizedAttack = async (): Promise<void> => {
    const header = Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])
    while (live() && sent.oversized < 50) {
      const socket = netConnect(portOf(urls.mqtt), '127.0.0.1')
      socket.on('error', () => {})
      const closed = new Promise((resolve) => socket.once('close', resolve))
      socket.once('connect', () => {
        socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `big-${sent.oversized}`, keepalive: 60 } as never))
        socket.write(header)
      })
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000))])
      socket.destroy()
      sent.oversized++
    }
  }

  // /mqtt: the same deep-JSON chat publishes through MQTT.js over WebSocket.
  const mqttWsAttack = async (): Promise<void> => {
    const client = mqtt.connect(urls['mqtt-ws'], { clientId: 'attacker-ws', reconnectPeriod: 0 })
    client.on('error', () => {})
    await new Promise<void>((resolve) => { client.once('connect', () => resolve()); client.once('close', () => resolve()) })
    const payload = Buffer.from(deepJson(opts.maxPayload - 64))
    const t0 = Date.now()
    while (live() && sent['mqtt-ws'] < MAX_INPUTS && client.connected) {
      await new Promise<void>((resolve) => client.publish('chat/attack', payload, { qos: 0 }, () => resolve()))
      await due(t0, ++sent['mqtt-ws'])
    }
    client.end(true)
  }

  // HTTP: POST /api/publish bodies of deep JSON at the body limit.
  const httpAttack = async (): Promise<void> => {
    const body = deepJson(maxFrame - 16)
    const t0 = Date.now()
    while (live() && sent.http < MAX_INPUTS) {
      const res = await fetch(`${urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(5000) }).catch(() => undefined)
      await res?.arrayBuffer()
      await due(t0, ++sent.http)
    }
  }

  // The healthy side: a /ws client and an MQTT client exchange a message each way, again and again.
  const hub = await openHub(t, urls.ws, { name: 'healthy', room: 'calm' })
  await hub.waitJson('history')
  const mq = await openMqtt(t, urls.mqtt, { clientId: 'healthy-mqtt' })
  await mq.subscribeAsync('chat/calm')
  const roundTrips: number[] = []
  const healthy = async (): Promise<void> => {
    for (let i = 0; live(); i++) {
      const t0 = performance.now()
      const toMqtt = nextMqttMessage(mq, (topic, p) => topic === 'chat/calm' && p.toString().includes(`ws-${i}`), 5000)
      hub.send({ type: 'chat', text: `ws-${i}` })
      await toMqtt
      const toHub = hub.waitMessage('chat/calm', (f) => f.payload === `mqtt-${i}`)
      await mq.publishAsync('chat/calm', `mqtt-${i}`)
      await toHub
      roundTrips.push(performance.now() - t0)
      // Twenty round trips a second: a chat, not a benchmark competing with the attack.
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  // /api/health, polled every 100 ms (a timer, not a sleep: it paces the probe).
  const healthMs: number[] = []
  const probe = async (): Promise<void> => {
    while (live()) {
      const t0 = performance.now()
      const res = await fetch(`${urls.http}/api/health`, { signal: AbortSignal.timeout(5000) })
      await res.arrayBuffer()
      healthMs.push(performance.now() - t0)
      if (res.status !== 200) throw new Error(`/api/health answered ${res.status}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  // The machine's own noise, for reading a failure: the idle gateway's lag so far (a busy
  // shared machine shows here what it adds below).
  const lagOf = async (): Promise<{ maxMs: number, p99Ms: number }> => {
    const text = await (await fetch(`${urls.http}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
    const read = (name: string): number => 1000 * Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1])
    return { maxMs: read('fusion_event_loop_lag_max_seconds'), p99Ms: read('fusion_event_loop_lag_p99_seconds') }
  }
  const idle = await lagOf()
  const testLag = new LoopLag()
  const only = process.env.HOSTILE_ONLY
  const attackers = { ws: wsAttack, mqtt: mqttTcpAttack, oversized: oversizedAttack, 'mqtt-ws': mqttWsAttack, http: httpAttack }
  await Promise.all([...Object.entries(attackers).filter(([k]) => only === undefined || only === k).map(([, f]) => f()), healthy(), probe()])
  const mine = testLag.stop()
  const { maxMs, p99Ms } = await lagOf()

  return { urls, sent, healthMs, roundTrips, idle, mine, maxMs, p99Ms, stop }
}

/**
 * Timing on a shared machine: an attempt over a timing budget (the slowest /api/health,
 * the lag p99) or whose attackers did not get going is run again on a fresh gateway, up
 * to three times; every attempt is reported, and the last one is judged.
 */
const ATTEMPTS = 3

t.test('worst inputs on every door at once; a healthy pair, /api/health and the loop keep up', async (t) => {
  let a: Attempt | undefined
  for (let n = 1; n <= ATTEMPTS; n++) {
    if (a) await a.stop()
    a = await attack(t)
    const { sent, healthMs, roundTrips, idle, mine, maxMs, p99Ms } = a
    const worstHealth = Math.max(...healthMs)
    const worstRound = Math.max(...roundTrips)
    t.comment(`attempt ${n}: hostile load for ${ATTACK_MS} ms, inputs sent: ${JSON.stringify(sent)}`)
    t.comment(`attempt ${n}: the idle gateway before the attack: lag max ${idle.maxMs.toFixed(1)} ms, p99 ${idle.p99Ms.toFixed(1)} ms`)
    t.comment(`attempt ${n}: the gateway's event-loop lag (its /metrics, since start): max ${maxMs.toFixed(1)} ms, p99 ${p99Ms.toFixed(1)} ms; this test process (attackers and clients): max ${mine.maxMs.toFixed(1)} ms, p99 ${mine.p99Ms.toFixed(1)} ms`)
    t.comment(`attempt ${n}: /api/health: ${healthMs.length} probes, slowest ${worstHealth.toFixed(1)} ms; healthy pair: ${roundTrips.length} round trips, slowest ${worstRound.toFixed(1)} ms`)
    const attackersIn = sent.ws! > 10 && sent.mqtt! > 10 && sent['mqtt-ws']! > 10 && sent.http! > 10
    if (attackersIn && roundTrips.length >= 10 && worstHealth < HEALTH_BUDGET_MS && p99Ms < LAG_P99_BUDGET_MS) break
  }
  const { urls, sent, healthMs, roundTrips, p99Ms } = a!
  const worstHealth = Math.max(...healthMs)
  t.ok(sent.ws! > 10 && sent.mqtt! > 10 && sent['mqtt-ws']! > 10 && sent.http! > 10, 'every attacker got its inputs in')
  t.ok(roundTrips.length >= 10, `the healthy pair kept exchanging messages (${roundTrips.length} round trips)`)
  t.ok(worstHealth < HEALTH_BUDGET_MS, `/api/health always answered in < ${HEALTH_BUDGET_MS} ms (slowest ${worstHealth.toFixed(1)} ms)`)
  t.ok(p99Ms < LAG_P99_BUDGET_MS, `the gateway's event-loop lag p99 ${p99Ms.toFixed(1)} ms < ${LAG_P99_BUDGET_MS} ms`)
  await assertHealthy(t, urls, 'hostile load', { rssLimitMb: RSS_LIMIT_MB })
})
