// Issue 16: store and forward across an upstream outage and a kill -9 of the gateway;
// and a TLS upstream with a CA made here.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import { startCli, type RunningCli } from '../helpers/cli.js'
import { openMqtt, requireProgram } from '../helpers/gateway.js'
import { startMosquitto, until } from '../helpers/mosquitto.js'

const have = requireProgram(t, 'mosquitto', 'mosquitto') && requireProgram(t, 'openssl', 'openssl')

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-bridge-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function linkStats (gw: RunningCli, name = 'up'): Promise<any> {
  const s = await (await fetch(`${gw.urls.http}/api/stats`)).json() as { upstream: Array<{ name: string }> }
  return s.upstream.find((l) => l.name === name)
}

const linkWhere = (gw: RunningCli, pred: (s: any) => boolean, what: string, timeoutMs?: number): Promise<any> =>
  until(async () => { const s = await linkStats(gw); return s && pred(s) ? s : undefined }, what, timeoutMs)

t.test('1,000 QoS 1 messages queued during an outage survive kill -9 and arrive once, in order', { skip: !have }, async (t) => {
  const dir = tempDir(t)
  const up = await startMosquitto(t, ['persistence true', `persistence_location ${dir}/`, 'max_queued_messages 0'])
  // A persistent session on the upstream that collects what the bridge sends while it is offline.
  const watchId = `dur-watch-${process.pid}`
  const first = await openMqtt(t, up.url, { clientId: watchId, clean: false })
  await first.subscribeAsync('site/dur/#', { qos: 1 })
  await first.endAsync()

  const file = join(dir, 'bridge.conf')
  writeFileSync(file, ['connection up', `url ${up.url}`, 'client-id gw-dur', 'reconnect-min-ms 200', 'reconnect-max-ms 1000', 'topic dur/# out 1 "" site/', ''].join('\n'))
  const gw = await startCli(t, ['--bridge', file])
  await linkWhere(gw, (s) => s.state === 'connected', 'connected')
  await up.stop()
  await linkWhere(gw, (s) => s.state !== 'connected', 'link down')

  const N = 1000
  const device = await openMqtt(t, gw.urls.mqtt, { clientId: `dur-dev-${process.pid}` })
  // In order on one connection, pipelined; every one acknowledged before the kill.
  await Promise.all(Array.from({ length: N }, (_, i) => device.publishAsync('dur/seq', String(i), { qos: 1 })))
  device.end(true)
  const before = await linkStats(gw)
  t.equal(before.queued, N, 'all queued while the upstream is away')

  const killed = await gw.stop('SIGKILL')
  t.equal(killed.signal, 'SIGKILL')
  const gw2 = await startCli(t, ['--bridge', file], { keepDataDir: gw.dataDir })
  const after = await linkStats(gw2)
  t.equal(after.queued, N, 'the queue is back after kill -9')

  await up.start()
  const got: number[] = []
  const watch = mqtt.connect(up.url, { clientId: watchId, clean: false, reconnectPeriod: 0 })
  t.teardown(() => watch.end(true))
  watch.on('message', (_topic, p) => got.push(Number(p.toString())))
  await linkWhere(gw2, (s) => s.queued === 0 && s.state === 'connected', 'queue drained', 30_000)
  await until(() => (got.length >= N ? true : undefined), `${N} messages upstream (have ${got.length})`, 20_000)
  // A marker after the queue: anything sent twice would arrive before it.
  const device2 = await openMqtt(t, gw2.urls.mqtt)
  await device2.publishAsync('dur/seq', 'end', { qos: 1 })
  await until(() => (got.some((n) => Number.isNaN(n)) ? true : undefined), 'the marker')
  const nums = got.filter((n) => !Number.isNaN(n))
  t.equal(nums.length, N, 'exactly once: no duplicates')
  t.same(nums, Array.from({ length: N }, (_, i) => i), 'every message, in order')
})

t.test('TLS upstream with a CA made here', { skip: !have }, async (t) => {
  const dir = tempDir(t)
  const ssl = (...args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr.toString()}`)
  }
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=fusion test CA')
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf')
  const up = await startMosquitto(t, [`cafile ${join(dir, 'ca.pem')}`, `certfile ${join(dir, 'server.pem')}`, `keyfile ${join(dir, 'server.key')}`], { scheme: 'mqtts' })
  const good = join(dir, 'bridge.conf')
  writeFileSync(good, ['connection up', `url ${up.url}`, 'ca ca.pem', 'topic tls/# out 1 "" over-tls/', ''].join('\n'))
  const gw = await startCli(t, ['--bridge', good])
  await linkWhere(gw, (s) => s.state === 'connected', 'connected over TLS')
  const watch = await openMqtt(t, up.url, { ca: readFileSync(join(dir, 'ca.pem')) })
  await watch.subscribeAsync('over-tls/#', { qos: 1 })
  const arrived = new Promise<string>((resolve) => watch.once('message', (topic, p) => resolve(`${topic} ${p}`)))
  const device = await openMqtt(t, gw.urls.mqtt)
  await device.publishAsync('tls/hello', 'secret', { qos: 1 })
  t.equal(await arrived, 'over-tls/tls/hello secret', 'carried over TLS, verified against the test CA')

  // Without the CA the certificate is refused: a visible state, not a crash.
  const bad = join(dir, 'bridge-noca.conf')
  writeFileSync(bad, ['connection up', `url ${up.url}`, 'topic tls/# out 1', ''].join('\n'))
  const gw2 = await startCli(t, ['--bridge', bad])
  const s = await linkWhere(gw2, (x) => x.lastError !== undefined, 'a TLS error')
  t.match(s.lastError, /certificate/i, `named: ${s.lastError}`)
  t.equal((await fetch(`${gw2.urls.http}/api/health`)).status, 200, 'the gateway stays ready')
})
