// Every mosquitto_pub / mosquitto_sub line in the README's "Try it in a minute" block,
// run as written with the real Debian tools against a gateway. The only changes: the
// gateway's real port for `-p 1883`, 127.0.0.1 for localhost, and bounds on
// mosquitto_sub (-W seconds, -C messages) so that no test can hang.
import t from 'tap'
import { runProgram, type RunningProgram } from '../helpers/program.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startGateway, openHub, openMqtt, nextMqttMessage, requireProgram, type T } from '../helpers/gateway.js'
import { PROJECT_DIR } from '../helpers/cli.js'

const BEGIN = '<!-- mosquitto-examples:begin -->'
const END = '<!-- mosquitto-examples:end -->'
/** Seconds a mosquitto_sub may live at most in these tests. */
const SUB_BOUND_S = 20

/** Splits a shell line into words: single and double quotes, no expansion, `#` comments. */
function shellWords (line: string): string[] {
  const out: string[] = []
  let cur = ''
  let inWord = false
  let quote: string | undefined
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined
      else cur += ch
      continue
    }
    if (ch === "'" || ch === '"') { quote = ch; inWord = true; continue }
    if (ch === '#' && !inWord) break
    if (/\s/.test(ch)) {
      if (inWord) { out.push(cur); cur = ''; inWord = false }
      continue
    }
    cur += ch
    inWord = true
  }
  if (quote) throw new Error(`unbalanced quote in: ${line}`)
  if (inWord) out.push(cur)
  return out
}

/** The mosquitto command lines of the README block, as written. */
function readmeLines (): string[] {
  const text = readFileSync(join(PROJECT_DIR, 'README.md'), 'utf8')
  const a = text.indexOf(BEGIN)
  const b = text.indexOf(END)
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} ... ${END} block`)
  return text.slice(a + BEGIN.length, b).split('\n').map((l) => l.trim()).filter((l) => /^mosquitto_(pub|sub)\s/.test(l))
}

const lines = readmeLines()
const covered = new Set<string>()

/** The README line for which `pred` holds (exactly one), marked as covered. */
function line (pred: (words: string[]) => boolean, what: string): string[] {
  const found = lines.filter((l) => pred(shellWords(l)))
  if (found.length !== 1) throw new Error(`README: expected one line for ${what}, found ${found.length}: ${JSON.stringify(found)}`)
  covered.add(found[0] as string)
  return shellWords(found[0] as string)
}

/** Value of option `opt` in words. */
function opt (words: string[], name: string): string | undefined {
  const i = words.indexOf(name)
  return i >= 0 ? words[i + 1] : undefined
}

/** Points the line at our gateway and bounds a subscriber. */
function localize (words: string[], port: number, bounds: { W?: number, C?: number } = {}): string[] {
  const out = [...words]
  const h = out.indexOf('-h')
  const p = out.indexOf('-p')
  if (h < 0 || out[h + 1] !== 'localhost') throw new Error(`expected -h localhost in: ${words.join(' ')}`)
  if (p < 0 || out[p + 1] !== '1883') throw new Error(`expected -p 1883 in: ${words.join(' ')}`)
  out[h + 1] = '127.0.0.1'
  out[p + 1] = String(port)
  if (out[0] === 'mosquitto_sub') {
    if (!out.includes('-W')) out.push('-W', String(bounds.W ?? SUB_BOUND_S))
    if (!out.includes('-C') && bounds.C !== undefined) out.push('-C', String(bounds.C))
  }
  return out
}

function run (t: T, argv: string[]): RunningProgram {
  const [cmd, ...args] = argv
  return runProgram(t, cmd as string, args)
}

/** Resolves when the broker has a subscription on `filter` (what mosquitto_sub asked for). */
function subscribed (gateway: { broker: NodeJS.EventEmitter }, filter: string, timeoutMs = 8000): Promise<{ topic: string, qos: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { gateway.broker.off('subscribe', on); reject(new Error(`nobody subscribed to ${filter} within ${timeoutMs} ms`)) }, timeoutMs)
    const on = (subs: Array<{ topic: string, qos: number }>): void => {
      const s = subs.find((x) => x.topic === filter)
      if (!s) return
      clearTimeout(timer)
      gateway.broker.off('subscribe', on)
      resolve(s)
    }
    gateway.broker.on('subscribe', on)
  })
}

async function ok (r: RunningProgram, what: string): Promise<void> {
  const { code } = await r.exited
  if (code !== 0) throw new Error(`${what} exited ${code}: ${r.err()}`)
}

function tools (t: Parameters<typeof requireProgram>[0]): boolean {
  return requireProgram(t, 'mosquitto_pub', 'mosquitto-clients') && requireProgram(t, 'mosquitto_sub', 'mosquitto-clients')
}

t.test('1 and 2: mosquitto_sub on chat/# sees a /ws chat line; mosquitto_pub on chat/lobby reaches /ws', async (t) => {
  const subLine = line((w) => w[0] === 'mosquitto_sub' && opt(w, '-t') === 'chat/#', 'mosquitto_sub chat/#')
  const pubLine = line((w) => w[0] === 'mosquitto_pub' && opt(w, '-t') === 'chat/lobby', 'mosquitto_pub chat/lobby')
  if (!tools(t)) return
  const { gateway, urls } = await startGateway(t)
  const port = Number(new URL(urls.mqtt).port)
  const hub = await openHub(t, urls.ws, { name: 'alice' })
  await hub.waitJson('history')

  const ready = subscribed(gateway, 'chat/#')
  const sub = run(t, localize(subLine, port, { C: 2 }))
  await ready
  hub.send('hi from ws')
  const out = await sub.wait((o) => o.includes('chat/lobby {'), 'the chat line')
  const [topic, ...rest] = out.split('\n')[0]!.split(' ')
  t.equal(topic, 'chat/lobby', '-v prints the topic')
  t.match(JSON.parse(rest.join(' ')), { from: 'alice', text: 'hi from ws', via: 'ws' }, 'then the chat envelope')

  const pub = run(t, localize(pubLine, port))
  await ok(pub, 'mosquitto_pub')
  const m = await hub.waitMessage('chat/lobby', (f) => f.payload === 'hello from mosquitto')
  t.match(m, { via: 'mqtt', payload: 'hello from mosquitto' }, 'the /ws client sees the MQTT line as chat')
  await sub.wait((o) => o.includes('chat/lobby hello from mosquitto'), 'its own line')
  t.match(await sub.exited, { code: 0 }, 'the subscriber ends after -C 2')
})

t.test('3: + filters: mosquitto_sub sensors/+/temp gets mosquitto_pub sensors/kitchen/temp', async (t) => {
  const subLine = line((w) => w[0] === 'mosquitto_sub' && opt(w, '-t') === 'sensors/+/temp', 'mosquitto_sub sensors/+/temp')
  const pubLine = line((w) => w[0] === 'mosquitto_pub' && opt(w, '-t') === 'sensors/kitchen/temp', 'mosquitto_pub sensors/kitchen/temp')
  if (!tools(t)) return
  const { gateway, urls } = await startGateway(t)
  const port = Number(new URL(urls.mqtt).port)
  const hub = await openHub(t, urls.ws, { name: 'dash' })
  await hub.subscribe('sensors/+/temp')

  const ready = subscribed(gateway, 'sensors/+/temp')
  const sub = run(t, localize(subLine, port, { C: 1 }))
  await ready
  await ok(run(t, localize(pubLine, port)), 'mosquitto_pub')
  await sub.exited
  t.equal(sub.out(), 'sensors/kitchen/temp 21.5\n')
  t.match(await hub.waitMessage('sensors/kitchen/temp'), { payload: '21.5', via: 'mqtt' }, 'and /ws sees it')
})

t.test('4: a retained state reaches a later subscriber; -r -n clears it', async (t) => {
  const pubLine = line((w) => w[0] === 'mosquitto_pub' && w.includes('-r'), 'mosquitto_pub -r')
  const subLine = line((w) => w[0] === 'mosquitto_sub' && opt(w, '-t') === opt(pubLine, '-t'), 'the later mosquitto_sub')
  t.equal(opt(pubLine, '-t'), 'lights/hall/state')
  if (!tools(t)) return
  const { urls } = await startGateway(t)
  const port = Number(new URL(urls.mqtt).port)

  await ok(run(t, localize(pubLine, port)), 'mosquitto_pub -r')
  const sub = run(t, localize(subLine, port))
  t.match(await sub.exited, { code: 0 }, 'the late subscriber gets one message (-C 1) and ends')
  t.equal(sub.out(), 'lights/hall/state on\n')

  const hub = await openHub(t, urls.ws, { name: 'late' })
  await hub.subscribe('lights/#')
  t.match(await hub.waitMessage('lights/hall/state'), { payload: 'on', retain: true }, 'a /ws subscriber gets it retained too')

  // The comment's advice: the same publish with -r -n (an empty retained message) clears it.
  const clear = localize(pubLine, port).filter((w, i, a) => w !== '-m' && a[i - 1] !== '-m')
  clear.push('-n')
  await ok(run(t, clear), 'mosquitto_pub -r -n')
  const mqttLate = await openMqtt(t, urls.mqtt)
  const marker = nextMqttMessage(mqttLate, (topic) => topic === 'lights/marker')
  let stale = false
  mqttLate.on('message', (topic) => { if (topic === 'lights/hall/state') stale = true })
  await mqttLate.subscribeAsync('lights/#')
  // Retained messages come right after SUBACK; a marker published now comes after them.
  await mqttLate.publishAsync('lights/marker', 'x')
  await marker
  t.notOk(stale, 'after -r -n a new subscriber gets no retained state')
})

t.test('5: QoS 1 both ways', async (t) => {
  const subLine = line((w) => w[0] === 'mosquitto_sub' && opt(w, '-t') === 'alerts/#', 'mosquitto_sub alerts/#')
  const pubLine = line((w) => w[0] === 'mosquitto_pub' && opt(w, '-t') === 'alerts/door', 'mosquitto_pub alerts/door')
  t.equal(opt(subLine, '-q'), '1')
  t.equal(opt(pubLine, '-q'), '1')
  if (!tools(t)) return
  const { gateway, urls } = await startGateway(t)
  const port = Number(new URL(urls.mqtt).port)

  const ready = subscribed(gateway, 'alerts/#')
  const sub = run(t, localize(subLine, port, { C: 1 }))
  t.equal((await ready).qos, 1, 'the broker grants QoS 1')
  const published = new Promise<number>((resolve) => {
    const on = (packet: { topic: string, qos: number }): void => { if (packet.topic === 'alerts/door') { gateway.broker.off('publish', on); resolve(packet.qos) } }
    gateway.broker.on('publish', on)
  })
  await ok(run(t, localize(pubLine, port)), 'mosquitto_pub -q 1 (it waits for the PUBACK)')
  t.equal(await published, 1, 'the publish arrives at QoS 1')
  await sub.exited
  t.equal(sub.out(), 'alerts/door open\n')
})

t.test('6: a device with a last will: SIGKILL it and presence/dev42 says offline, retained, on /ws too', async (t) => {
  const willLine = line((w) => w[0] === 'mosquitto_sub' && w.includes('--will-topic'), 'mosquitto_sub with a will')
  t.equal(opt(willLine, '--will-topic'), 'presence/dev42')
  t.equal(opt(willLine, '-i'), 'dev42', 'the client id is the one the presence topic names')
  if (!tools(t)) return
  const started = await startGateway(t)
  const port = Number(new URL(started.urls.mqtt).port)
  const hub = await openHub(t, started.urls.ws, { name: 'watcher' })
  await hub.waitJson('history')

  const ready = subscribed(started.gateway, 'cmd/dev42/#')
  const dev = run(t, localize(willLine, port, { C: 5 }))
  t.match(await hub.waitJson('presence', (f) => f.clientId === 'dev42' && f.status === 'online'), { via: 'mqtt', name: 'dev42' }, 'online on /ws')
  // Once it is subscribed to its commands, one from /ws reaches it.
  await ready
  const ack = await hub.request({ type: 'publish', topic: 'cmd/dev42/led', payload: 'on' })
  t.equal(ack.type, 'ack')
  await dev.wait((o) => o === 'on\n', 'the command')

  dev.proc.kill('SIGKILL')
  t.match(await dev.exited, { signal: 'SIGKILL' })
  const off = await hub.waitJson('presence', (f) => f.clientId === 'dev42' && f.status === 'offline')
  t.match(off, { name: 'dev42', via: 'mqtt', status: 'offline' }, 'offline on /ws')

  const late = run(t, ['mosquitto_sub', '-h', '127.0.0.1', '-p', String(port), '-t', 'presence/dev42', '-C', '1', '-v', '-W', '5', '-F', '%r %t %p'])
  await late.exited
  t.equal(late.out(), '1 presence/dev42 offline\n', 'a late subscriber reads the will, retained')
})

t.test('every mosquitto line of the README block is covered', async (t) => {
  t.ok(lines.length >= 9, `found ${lines.length} lines`)
  // The tests above run first (tap runs subtests in order); each marks its lines.
  t.same(lines.filter((l) => !covered.has(l)), [], 'no line without a test')
})
