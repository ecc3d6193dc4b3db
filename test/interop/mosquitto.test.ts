// The real mosquitto_pub and mosquitto_sub (Debian mosquitto-clients) against the gateway:
// what a user pastes from the README must work, both ways, with /ws clients.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { openHub, requireProgram, startGateway, type HubClient, type HubFrame, type T } from '../helpers/gateway.js'

// Checked once, up front: under CI a missing program fails; elsewhere every test below is skipped with the reason.
const have = requireProgram(t, 'mosquitto_pub', 'mosquitto-clients') &&
  requireProgram(t, 'mosquitto_sub', 'mosquitto-clients') &&
  requireProgram(t, 'stdbuf', 'coreutils')
const skip = have ? false : 'mosquitto-clients (or stdbuf) is not installed'

const hostPort = (mqttUrl: string): string[] => {
  const u = new URL(mqttUrl)
  return ['-h', u.hostname, '-p', u.port]
}

interface PubOptions { qos?: 0 | 1 | 2, retain?: boolean, clientId?: string, stdin?: Buffer, file?: string, args?: string[] }

/** Runs mosquitto_pub once; resolves with its exit code and stderr (killed after 10 s). */
function mosquittoPub (mqttUrl: string, topic: string, message: string | null, o: PubOptions = {}): Promise<{ code: number | null, stderr: string }> {
  const argv = [...hostPort(mqttUrl), '-t', topic, '-q', String(o.qos ?? 0), ...(o.retain ? ['-r'] : []),
    ...(o.clientId ? ['-i', o.clientId] : []), ...(o.args ?? [])]
  if (o.file) argv.push('-f', o.file)
  else if (o.stdin) argv.push('-s')
  else if (message === null) argv.push('-n')
  else argv.push('-m', message)
  return new Promise((resolve) => {
    const proc = spawn('mosquitto_pub', argv, { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr.on('data', (d) => { stderr += d })
    proc.stdin.on('error', () => {})
    proc.stdin.end(o.stdin)
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }) })
  })
}

/** mosquitto_pub that must succeed. */
async function pub (mqttUrl: string, topic: string, message: string | null, o: PubOptions = {}): Promise<void> {
  const r = await mosquittoPub(mqttUrl, topic, message, o)
  if (r.code !== 0) throw new Error(`mosquitto_pub -t ${topic} exited ${r.code}: ${r.stderr.trim()}`)
}

interface SubMessage { topic: string, payload: Buffer, text: string, retain: boolean, qos: number }

const SUB_FORMAT = 'MSG|%r|%q|%t|%x'
const SUB_LINE = /^MSG\|([01])\|([012])\|(.*)\|([0-9a-f]*)$/

/** A running mosquitto_sub: ready once its SUBACK is in, bounded by -W (and -C). */
class MosquittoSub {
  readonly messages: SubMessage[] = []
  readonly proc: ChildProcess
  readonly exited: Promise<number | null>
  readonly ready: Promise<string>
  #log = ''
  #waiters = new Set<{ test: (m: SubMessage) => boolean, resolve: (m: SubMessage) => void }>()

  constructor (mqttUrl: string, filters: string[], o: { qos?: 0 | 1, clientId?: string, count?: number, timeoutSec?: number, args?: string[] } = {}) {
    const argv = [...hostPort(mqttUrl), '-d', '-q', String(o.qos ?? 0), '-W', String(o.timeoutSec ?? 15), '-F', SUB_FORMAT,
      ...filters.flatMap((f) => ['-t', f]), ...(o.count ? ['-C', String(o.count)] : []),
      ...(o.clientId ? ['-i', o.clientId] : []), ...(o.args ?? [])]
    // stdbuf: mosquitto_sub's stdout to a pipe is block-buffered, which would hold back the SUBACK line.
    this.proc = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)))
    let markReady: (granted: string) => void = () => {}
    let failReady: (err: Error) => void = () => {}
    this.ready = new Promise((resolve, reject) => { markReady = resolve; failReady = reject })
    this.ready.catch(() => {})
    let pending = ''
    this.proc.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8')
      let nl: number
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl)
        pending = pending.slice(nl + 1)
        const m = SUB_LINE.exec(line)
        if (m) {
          const payload = Buffer.from(m[4] as string, 'hex')
          const msg = { topic: m[3] as string, payload, text: payload.toString('utf8'), retain: m[1] === '1', qos: Number(m[2]) }
          this.messages.push(msg)
          for (const w of this.#waiters) if (w.test(msg)) { this.#waiters.delete(w); w.resolve(msg) }
          continue
        }
        this.#log += line + '\n'
        const granted = /^Subscribed \(mid: \d+\): (.*)$/.exec(line)
        if (granted) markReady(granted[1] as string)
      }
    })
    this.proc.stderr!.on('data', (d: Buffer) => { this.#log += d.toString() })
    void this.exited.then((code) => failReady(new Error(`mosquitto_sub exited ${code} before its SUBACK: ${this.#log.trim().slice(-300)}`)))
  }

  waitFor (test: (m: SubMessage) => boolean, what: string, timeoutMs = 5000): Promise<SubMessage> {
    const found = this.messages.find(test)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w)
        reject(new Error(`mosquitto_sub: no ${what} within ${timeoutMs} ms (${this.messages.length} received; log: ${this.#log.trim().slice(-200)})`))
      }, timeoutMs)
      const w = { test, resolve: (m: SubMessage) => { clearTimeout(timer); resolve(m) } }
      this.#waiters.add(w)
    })
  }

  count (test: (m: SubMessage) => boolean): number { return this.messages.filter(test).length }

  /** Stops it (SIGTERM, then SIGKILL); resolves once it has exited. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill(signal)
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 2000)
      await this.exited
      clearTimeout(timer)
    }
  }
}

async function openSub (t: T, mqttUrl: string, filters: string[], o: ConstructorParameters<typeof MosquittoSub>[2] = {}): Promise<MosquittoSub> {
  const sub = new MosquittoSub(mqttUrl, filters, o)
  t.teardown(() => sub.stop())
  const granted = await Promise.race([
    sub.ready,
    new Promise<string>((_resolve, reject) => { const tm = setTimeout(() => reject(new Error('mosquitto_sub: no SUBACK within 5 s')), 5000); void sub.ready.finally(() => clearTimeout(tm)).catch(() => {}) })
  ])
  if (granted.split(',').some((c) => Number(c) >= 128)) throw new Error(`mosquitto_sub: subscription refused (${granted})`)
  return sub
}

const ws = (f: HubFrame | string): f is HubFrame => typeof f === 'object'
const copies = (c: HubClient, topic: string, payload: string): number =>
  c.frames.filter((f) => ws(f) && f.type === 'message' && f.topic === topic && f.payload === payload).length

t.test('mosquitto_pub reaches /ws subscribers on exact, + and # filters, once each', { skip }, async (t) => {
  const { urls } = await startGateway(t)
  const exact = await openHub(t, urls.ws, { name: 'exact' })
  const plus = await openHub(t, urls.ws, { name: 'plus' })
  const hash = await openHub(t, urls.ws, { name: 'hash' })
  await exact.subscribe('sensors/k1/temp')
  await plus.subscribe('sensors/+/temp')
  await hash.subscribe('sensors/#')
  await hash.subscribe('fence')
  await exact.subscribe('fence')
  await plus.subscribe('fence')
  await pub(urls.mqtt, 'sensors/k1/temp', '21.5', { clientId: 'thermo-1' })
  await pub(urls.mqtt, 'sensors/k1/humidity', '40', { clientId: 'thermo-1' })
  await pub(urls.mqtt, 'fence', 'f')
  for (const [name, c] of [['exact', exact], ['+', plus], ['#', hash]] as const) {
    await c.waitMessage('fence')
    const m = await c.waitMessage('sensors/k1/temp')
    t.match(m, { payload: '21.5', via: 'mqtt', from: 'thermo-1', retain: false }, `${name}: the message, from the client id`)
    t.equal(m.encoding, undefined, `${name}: a UTF-8 payload has no encoding`)
    t.equal(copies(c, 'sensors/k1/temp', '21.5'), 1, `${name}: once`)
  }
  t.equal(copies(hash, 'sensors/k1/humidity', '40'), 1, '# also gets sensors/k1/humidity')
  t.equal(copies(plus, 'sensors/k1/humidity', '40') + copies(exact, 'sensors/k1/humidity', '40'), 0, 'exact and + do not')

  const utf8 = 'héllo ✓ 温度'
  await pub(urls.mqtt, 'sensors/k1/temp', utf8)
  t.equal((await exact.waitMessage('sensors/k1/temp', (f) => f.payload === utf8)).payload, utf8, 'UTF-8 from -m arrives as text')
  await pub(urls.mqtt, 'sensors/k1/temp', null)
  const empty = await exact.waitMessage('sensors/k1/temp', (f) => f.payload === '')
  t.equal(empty.payload, '', 'an empty message (-n) arrives empty')
})

t.test('a /ws chat line reaches mosquitto_sub -t chat/# as the chat envelope', { skip }, async (t) => {
  const { urls } = await startGateway(t)
  const sub = await openSub(t, urls.mqtt, ['chat/#'])
  const alice = await openHub(t, urls.ws, { name: 'alice' })
  await alice.waitJson('history')
  alice.send('hello from a browser')
  alice.send({ type: 'chat', text: 'to the kitchen', room: 'kitchen' })
  const lobby = await sub.waitFor((m) => m.topic === 'chat/lobby' && m.text.includes('hello from a browser'), 'chat/lobby')
  t.same(Object.keys(JSON.parse(lobby.text)).sort(), ['from', 'text', 'ts', 'via'])
  t.match(JSON.parse(lobby.text), { from: 'alice', text: 'hello from a browser', via: 'ws' })
  const kitchen = await sub.waitFor((m) => m.topic === 'chat/kitchen', 'chat/kitchen')
  t.match(JSON.parse(kitchen.text), { from: 'alice', text: 'to the kitchen', via: 'ws' })

  // And back: mosquitto_pub into the room shows up in the browser, from its client id.
  await pub(urls.mqtt, 'chat/lobby', 'hi from the shell', { clientId: 'shell' })
  t.match(await alice.waitMessage('chat/lobby', (f) => f.payload === 'hi from the shell'), { from: 'shell', via: 'mqtt' })
  const echoed = await sub.waitFor((m) => m.text === 'hi from the shell', 'the plain payload, untouched')
  t.equal(echoed.topic, 'chat/lobby', 'MQTT subscribers get what the MQTT client published, unchanged')
})

t.test('retained (-r) reaches a later /ws client and a later mosquitto_sub', { skip }, async (t) => {
  const { urls } = await startGateway(t)
  await pub(urls.mqtt, 'home/door/state', 'open', { retain: true, qos: 1 })
  const c = await openHub(t, urls.ws, { name: 'late' })
  await c.subscribe('home/+/state')
  t.match(await c.waitMessage('home/door/state'), { payload: 'open', retain: true }, '/ws: retained, marked so')

  const fromWs = await c.request({ type: 'publish', topic: 'home/lamp/state', payload: 'on', retain: true })
  t.equal(fromWs.type, 'ack')
  const sub = await openSub(t, urls.mqtt, ['home/#'])
  const door = await sub.waitFor((m) => m.topic === 'home/door/state', 'home/door/state')
  t.match(door, { text: 'open', retain: true }, 'mosquitto_sub: the retained message, flag set')
  const lamp = await sub.waitFor((m) => m.topic === 'home/lamp/state', 'home/lamp/state')
  t.match(lamp, { text: 'on', retain: true }, 'mosquitto_sub: retained from /ws too')

  await pub(urls.mqtt, 'home/door/state', null, { retain: true, qos: 1 })
  const after = await openSub(t, urls.mqtt, ['home/door/state', 'home/lamp/state'])
  await after.waitFor((m) => m.topic === 'home/lamp/state', 'the lamp')
  t.equal(after.count((m) => m.topic === 'home/door/state' && m.payload.length > 0), 0, 'pub -n -r cleared the retained door')
})

t.test('QoS 1 end to end', { skip }, async (t) => {
  const { urls } = await startGateway(t)
  const sub = await openSub(t, urls.mqtt, ['q/#'], { qos: 1 })
  const c = await openHub(t, urls.ws, { name: 'q' })
  await c.subscribe('q/#')
  await pub(urls.mqtt, 'q/from-pub', 'one', { qos: 1 })
  t.match(await sub.waitFor((m) => m.topic === 'q/from-pub', 'q/from-pub'), { text: 'one', qos: 1 }, 'mosquitto_pub -q 1 -> mosquitto_sub -q 1')
  t.match(await c.waitMessage('q/from-pub'), { payload: 'one', qos: 1 }, 'and /ws sees qos 1')
  await c.request({ type: 'publish', topic: 'q/from-ws', payload: 'two', qos: 1 })
  t.match(await sub.waitFor((m) => m.topic === 'q/from-ws', 'q/from-ws'), { text: 'two', qos: 1 }, '/ws qos 1 -> mosquitto_sub -q 1')
})

t.test('mosquitto_sub -q 1 on a wildcard gets mosquitto_pub -q 2 at QoS 1, and a QoS 0 wildcard a retained QoS 1 at QoS 0', { skip }, async (t) => {
  const { urls } = await startGateway(t)
  const sub = await openSub(t, urls.mqtt, ['g/+'], { qos: 1 })
  await pub(urls.mqtt, 'g/two', 'sent at 2', { qos: 2 })
  t.match(await sub.waitFor((m) => m.topic === 'g/two', 'g/two'), { text: 'sent at 2', qos: 1 }, 'min(2, granted 1) = 1 (section 3.8.4)')
  await pub(urls.mqtt, 'gr/kept', 'retained at 1', { qos: 1, retain: true })
  const late = await openSub(t, urls.mqtt, ['gr/#'], { qos: 0 })
  t.match(await late.waitFor((m) => m.topic === 'gr/kept', 'gr/kept'), { text: 'retained at 1', qos: 0, retain: true }, 'min(1, granted 0) = 0')
})

t.test('binary payloads via -s and -f, and back from /ws byte for byte', { skip }, async (t) => {
  const { urls } = await startGateway(t)
  const dir = mkdtempSync(join(tmpdir(), 'fusion-mosq-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x41, 0x0a, 0x0d, 0x00])
  const file = join(dir, 'blob.bin')
  writeFileSync(file, Buffer.concat([bytes, bytes]))
  const c = await openHub(t, urls.ws, { name: 'bin' })
  await c.subscribe('bin/+')
  await pub(urls.mqtt, 'bin/stdin', null, { stdin: bytes })
  const s = await c.waitMessage('bin/stdin')
  t.equal(s.encoding, 'base64', '-s: base64 at /ws')
  t.ok(Buffer.from(s.payload, 'base64').equals(bytes), '-s: the same bytes')
  await pub(urls.mqtt, 'bin/file', null, { file })
  const f = await c.waitMessage('bin/file')
  t.equal(f.encoding, 'base64', '-f: base64 at /ws')
  t.ok(Buffer.from(f.payload, 'base64').equals(Buffer.concat([bytes, bytes])), '-f: the same bytes')

  const sub = await openSub(t, urls.mqtt, ['bin/back'])
  const a = await c.request({ type: 'publish', topic: 'bin/back', payload: bytes.toString('base64'), encoding: 'base64' })
  t.equal(a.type, 'ack')
  const back = await sub.waitFor((m) => m.topic === 'bin/back', 'bin/back')
  t.equal(back.payload.toString('hex'), bytes.toString('hex'), '/ws base64 -> mosquitto_sub, byte for byte')
})

t.test('a will: a mosquitto_sub that dies has its will delivered to /ws and MQTT', { skip }, async (t) => {
  const { urls } = await startGateway(t)
  const c = await openHub(t, urls.ws, { name: 'w' })
  await c.waitJson('history')
  await c.subscribe('devices/+/status')
  const device = await openSub(t, urls.mqtt, ['devices/cmd'], {
    clientId: 'dev-42',
    args: ['--will-topic', 'devices/dev-42/status', '--will-payload', 'gone', '--will-retain', '--will-qos', '1']
  })
  await c.waitJson('presence', (f) => f.clientId === 'dev-42' && f.status === 'online')
  t.pass('the device is announced online')
  await device.stop('SIGKILL') // no DISCONNECT: the broker sends the will
  t.match(await c.waitMessage('devices/dev-42/status'), { payload: 'gone', via: 'mqtt' }, 'the will reaches /ws')
  await c.waitJson('presence', (f) => f.clientId === 'dev-42' && f.status === 'offline')
  t.pass('and the device is announced offline')
  const later = await openSub(t, urls.mqtt, ['devices/+/status'])
  t.match(await later.waitFor((m) => m.topic === 'devices/dev-42/status', 'the retained will'), { text: 'gone', retain: true }, 'the will was retained')

  // A clean exit (DISCONNECT) discards the will, as MQTT says [MQTT-3.14.4-3].
  const polite = await openSub(t, urls.mqtt, ['devices/cmd'], {
    clientId: 'dev-43', count: 1, args: ['--will-topic', 'devices/dev-43/status', '--will-payload', 'gone']
  })
  await pub(urls.mqtt, 'devices/cmd', 'stop')
  t.equal(await polite.exited, 0, 'mosquitto_sub -C 1 exits 0 after one message')
  await c.waitJson('presence', (f) => f.clientId === 'dev-43' && f.status === 'offline')
  await pub(urls.mqtt, 'devices/fence/status', 'f')
  await c.waitMessage('devices/fence/status')
  t.equal(copies(c, 'devices/dev-43/status', 'gone'), 0, 'no will after a clean disconnect')
})

t.test('mosquitto clients cannot publish on $SYS: acknowledged and dropped by default, as Mosquitto does; refused with --deny-action disconnect', { skip }, async (t) => {
  for (const denyAction of ['ignore', 'disconnect'] as const) {
    const { urls } = await startGateway(t, { denyAction })
    const sub = await openSub(t, urls.mqtt, ['$SYS/fusion-test/#', 'fence'])
    const r = await mosquittoPub(urls.mqtt, '$SYS/fusion-test/x', 'x', { qos: 1 })
    if (denyAction === 'ignore') t.equal(r.code, 0, `--deny-action ignore: mosquitto_pub -q 1 to $SYS gets its PUBACK (exit ${r.code})`)
    else t.not(r.code, 0, `--deny-action disconnect: mosquitto_pub -q 1 to $SYS fails (exit ${r.code})`)
    await pub(urls.mqtt, 'fence', 'f')
    await sub.waitFor((m) => m.topic === 'fence', 'the fence')
    t.equal(sub.count((m) => m.topic.startsWith('$SYS/fusion-test')), 0, `${denyAction}: nothing reached $SYS subscribers`)
  }
})
