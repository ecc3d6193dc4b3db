// examples/device-sim.mjs, run as a user runs it, against a gateway.
import t from 'tap'
import { join } from 'node:path'
import { startGateway, openHub, openMqtt, nextMqttMessage, type T } from '../helpers/gateway.js'
import { PROJECT_DIR } from '../helpers/cli.js'
import { runProgram, type RunningProgram } from '../helpers/program.js'

/** examples/device-sim.mjs with `args`. */
function deviceSim (t: T, args: string[]): RunningProgram {
  return runProgram(t, process.execPath, [join(PROJECT_DIR, 'examples', 'device-sim.mjs'), ...args], { cwd: PROJECT_DIR })
}

const hasLine = (line: string) => (text: string): boolean => text.split('\n').includes(line)
const READING = /^\{"v":-?\d+\.\d{2},"ts":\d{13}\}$/

t.test('devices publish small QoS 1 readings, show online, and obey commands', async (t) => {
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'dashboard' })
  await hub.subscribe('sensors/#')
  const sim = deviceSim(t, ['--url', urls.mqtt, '--count', '3', '--prefix', 'sim', '--interval', '300', '--duration', '60'])

  for (const id of ['sim-1', 'sim-2', 'sim-3']) {
    t.match(await hub.waitJson('presence', (f) => f.clientId === id && f.status === 'online'), { via: 'mqtt', name: id }, `${id} online`)
    const m = await hub.waitMessage(`sensors/${id}/temp`)
    t.match(m.payload, READING, `${id}: {"v":..,"ts":..}`)
    t.equal(m.qos, 1, 'QoS 1')
    t.ok(Math.abs(JSON.parse(m.payload).ts - Date.now()) < 10_000, 'ts is wall-clock milliseconds')
  }

  t.equal((await hub.request({ type: 'publish', topic: 'cmd/sim-2/led', payload: 'on', qos: 1 })).type, 'ack')
  await sim.wait(hasLine('sim-2 led on'), 'the led command')
  const led = await hub.waitMessage('sensors/sim-2/led')
  t.match(led.payload, /^\{"v":1,"ts":\d{13}\}$/, 'the new state, reported')
  const late = await openMqtt(t, urls.mqtt)
  const retained = nextMqttMessage(late, (topic) => topic === 'sensors/sim-2/led')
  await late.subscribeAsync('sensors/sim-2/led')
  t.match(await retained, { retain: true }, 'retained for a later dashboard')
  hub.send({ type: 'publish', topic: 'cmd/sim-2/led', payload: 'toggle' })
  await sim.wait(hasLine('sim-2 led off'), 'toggle')

  hub.send({ type: 'publish', topic: 'cmd/sim-1/interval', payload: '150' })
  await sim.wait(hasLine('sim-1 interval 150'), 'the interval command')
  hub.send({ type: 'publish', topic: 'cmd/sim-1/interval', payload: '5' })
  await sim.wait(hasLine('sim-1 ignored interval "5" (100..3600000 ms)'), 'a too-short interval refused')

  sim.proc.kill('SIGTERM')
  t.match(await sim.exited, { code: 0 })
  t.match(sim.err(), /# \d+ readings sent, \d+ acknowledged, 0 reconnects/)
  for (const id of ['sim-1', 'sim-2', 'sim-3']) {
    await hub.waitJson('presence', (f) => f.clientId === id && f.status === 'offline')
  }
})

t.test('--end abrupt: the wills say offline; the persistent session keeps commands for the next run', async (t) => {
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'ops' })
  await hub.waitJson('history')
  const args = ['--url', urls.mqtt, '--count', '1', '--prefix', 'keep', '--interval', '1000', '--duration', '60', '--end', 'abrupt']
  const first = deviceSim(t, args)
  await first.wait(hasLine('keep-1 connected (session present: false)'), 'a new session')
  first.proc.kill('SIGTERM')
  t.match(await first.exited, { code: 0 })
  t.match(await hub.waitJson('presence', (f) => f.clientId === 'keep-1' && f.status === 'offline'), { via: 'mqtt' })
  const late = await openMqtt(t, urls.mqtt)
  const will = nextMqttMessage(late, (topic) => topic === 'presence/keep-1')
  await late.subscribeAsync('presence/keep-1')
  const w = await will
  t.same([w.payload.toString(), w.retain], ['offline', true], 'its will, retained')

  // Sent while it sleeps: QoS 1 to a persistent session waits in the broker.
  t.equal((await hub.request({ type: 'publish', topic: 'cmd/keep-1/led', payload: 'on', qos: 1 })).type, 'ack')
  const second = deviceSim(t, args)
  await second.wait(hasLine('keep-1 connected (session present: true)'), 'the same session')
  await second.wait(hasLine('keep-1 led on'), 'the command sent while it was away')
  second.proc.kill('SIGTERM')
  await second.exited
})

t.test('a restarted gateway: devices come back after a backoff with jitter', async (t) => {
  const first = await startGateway(t)
  const port = Number(new URL(first.urls.mqtt).port)
  const sim = deviceSim(t, ['--url', first.urls.mqtt, '--count', '2', '--prefix', 'rb', '--interval', '500', '--duration', '60'])
  await sim.wait((o) => hasLine('rb-1 connected (session present: false)')(o) && hasLine('rb-2 connected (session present: false)')(o), 'both connected')
  await first.gateway.close()
  await sim.wait((o) => /^rb-1 offline; retrying in \d+ ms$/m.test(o) && /^rb-2 offline; retrying in \d+ ms$/m.test(o), 'both backing off')
  const waits = [...sim.out().matchAll(/offline; retrying in (\d+) ms/g)].map((m) => Number(m[1]))
  t.ok(waits.every((ms) => ms >= 0 && ms <= 30_000), `waits within the cap: ${waits.join(', ')}`)

  const second = await startGateway(t, { mqttPort: port })
  const hub = await openHub(t, second.urls.ws, { name: 'ops' })
  await hub.subscribe('sensors/#')
  // The backoff doubles from 1 s: 1 + 2 + 4 + 8 s is the most the first attempts may wait.
  await sim.wait((o) => o.split('\n').filter((l) => /^rb-\d connected/.test(l)).length >= 4, 'both reconnected', 'out', 20_000)
  await hub.waitMessage('sensors/rb-1/temp')
  hub.send({ type: 'publish', topic: 'cmd/rb-2/led', payload: 'on', qos: 1 })
  await sim.wait(hasLine('rb-2 led on'), 'commands work again (it subscribed anew: the new gateway had no session)')
  sim.proc.kill('SIGTERM')
  t.match(await sim.exited, { code: 0 })
})

t.test('--report: connect time for all and delivery latency to a /ws hub client, as JSON', async (t) => {
  const { urls } = await startGateway(t)
  const sim = deviceSim(t, ['--url', urls.mqtt, '--hub', urls.ws, '--count', '20', '--prefix', 'load', '--interval', '200', '--duration', '3', '--report'])
  t.match(await sim.exited, { code: 0 })
  const r = JSON.parse(sim.out())
  t.match(r, { devices: 20, connected: 20, intervalMs: 200, qos: 1, reconnects: 0 })
  t.type(r.connectAllMs, 'number')
  t.ok(r.published > 0 && r.acked > 0, `published ${r.published}, acknowledged ${r.acked}`)
  t.ok(r.hub.received > 0, `the hub client received ${r.hub.received}`)
  t.type(r.hub.latencyMs.p99, 'number')
  t.ok(r.hub.latencyMs.p50 <= r.hub.latencyMs.p99 && r.hub.latencyMs.p99 <= r.hub.latencyMs.max)
  t.match(sim.err(), /^# connected 20\/20 in \d+ ms$/m)
})

t.test('--count 0 --hub: a measuring client only, for devices run by another process', async (t) => {
  const { urls } = await startGateway(t)
  const devices = deviceSim(t, ['--url', urls.mqtt, '--count', '5', '--prefix', 'far', '--interval', '200', '--duration', '30'])
  await devices.wait((o) => o.split('\n').filter((l) => / connected /.test(l)).length === 5, 'five devices')
  const probe = deviceSim(t, ['--hub', urls.ws, '--count', '0', '--prefix', 'far', '--steady', '2', '--duration', '20', '--report'])
  t.match(await probe.exited, { code: 0 })
  const r = JSON.parse(probe.out())
  t.match(r, { devices: 0, published: 0 })
  t.ok(r.hub.received > 0, `it measured ${r.hub.received} readings of far-*`)
  devices.proc.kill('SIGTERM')
  await devices.exited
})

t.test('bad flags exit 2 with one line naming the flag', async (t) => {
  for (const [flag, value] of [['--duration', '0'], ['--qos', '2'], ['--count', 'many'], ['--interval', '10'], ['--count', '0']] as const) {
    const sim = deviceSim(t, ['--url', 'mqtt://127.0.0.1:1', flag, value])
    t.match(await sim.exited, { code: 2 }, `${flag} ${value}`)
    t.match(sim.err(), new RegExp(`^device-sim: ${flag} `), 'names the flag')
  }
})
