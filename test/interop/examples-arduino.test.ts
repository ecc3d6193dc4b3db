// The ESP32 sketches in examples/arduino/ cannot be compiled here. What they send can
// be checked: this test reads their constants (topic and payload formats, keepalive,
// QoS, will) from the .ino source, checks that device-sim sends exactly that (bytes
// of CONNECT included), and replays the sketches' packets and frames, built the way
// their libraries build them, against a gateway.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, connect, type Socket } from 'node:net'
import { join } from 'node:path'
import WebSocket from 'ws'
import * as mqttPacket from 'mqtt-packet'
import { startGateway, openHub, openMqtt, nextMqttMessage, type T } from '../helpers/gateway.js'
import { PROJECT_DIR } from '../helpers/cli.js'

const MQTT_INO = join(PROJECT_DIR, 'examples', 'arduino', 'mqtt-sensor', 'mqtt-sensor.ino')
const WS_INO = join(PROJECT_DIR, 'examples', 'arduino', 'ws-sensor', 'ws-sensor.ino')

/** `const char NAME[] = "...";` and `const <int type> NAME = 123;` of a sketch. */
function sketchConstants (file: string): { source: string, str: Record<string, string>, num: Record<string, number> } {
  const source = readFileSync(file, 'utf8')
  const str: Record<string, string> = {}
  const num: Record<string, number> = {}
  for (const m of source.matchAll(/^const\s+char\s+(\w+)\[\]\s*=\s*"((?:[^"\\]|\\.)*)";/gm)) {
    str[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
  }
  for (const m of source.matchAll(/^const\s+(?:unsigned\s+long|uint8_t|uint16_t|int|long)\s+(\w+)\s*=\s*(\d+);/gm)) {
    num[m[1] as string] = Number(m[2])
  }
  return { source, str, num }
}

/** The printf conversions the sketches use: %s %d %llu %.2f. */
function sprintf (fmt: string, ...args: Array<string | number>): string {
  let i = 0
  return fmt.replace(/%(\.2f|llu|d|s)/g, (_, spec: string) => {
    const a = args[i++]
    if (a === undefined) throw new Error(`too few arguments for ${fmt}`)
    return spec === '.2f' ? Number(a).toFixed(2) : String(a)
  })
}

/** A regex matching what `fmt` can produce, capturing each conversion. */
function formatRegex (fmt: string): RegExp {
  const parts = fmt.split(/(%\.2f|%llu|%d|%s)/)
  const body = parts.map((p) => {
    switch (p) {
      case '%.2f': return '(-?\\d+\\.\\d{2})'
      case '%llu': return '(\\d+)'
      case '%d': return '(-?\\d+)'
      case '%s': return '([^/]+)'
      default: return p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    }
  }).join('')
  return new RegExp(`^${body}$`)
}

/** Renders `fmt` with the values another string of that format carries: equal means same format. */
function reformat (fmt: string, produced: string): string {
  const m = formatRegex(fmt).exec(produced)
  if (!m) return `<${produced} does not match ${fmt}>`
  return sprintf(fmt, ...m.slice(1).map((x) => x as string))
}

// ---- packets as ArduinoMqttClient writes them (MqttClient::connect, publishHeader, subscribe) ----
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff])
const str = (s: string): Buffer => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)])
function remainingLength (n: number): Buffer {
  const out: number[] = []
  do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; out.push(b) } while (n > 0)
  return Buffer.from(out)
}
const packet = (first: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([first]), remainingLength(body.length), body])

function arduinoConnect (id: string, keepaliveS: number, clean: boolean, will: { topic: string, payload: string, qos: number, retain: boolean }): Buffer {
  const flags = ((will.qos << 3) | 0x04 | (will.retain ? 0x20 : 0)) | (clean ? 0x02 : 0)
  return packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([0x04, flags]), u16(keepaliveS), str(id), str(will.topic), str(will.payload)]))
}
const arduinoSubscribe = (id: number, topic: string, qos: number): Buffer => packet(0x82, Buffer.concat([u16(id), str(topic), Buffer.from([qos])]))
function arduinoPublish (id: number, topic: string, payload: string, qos: number, retain: boolean): Buffer {
  const flags = (retain ? 0x01 : 0) | (qos << 1)
  return packet(0x30 | flags, Buffer.concat([str(topic), qos ? u16(id) : Buffer.alloc(0), Buffer.from(payload)]))
}
const arduinoPuback = (id: number): Buffer => packet(0x40, u16(id))

/** Reads MQTT packets off a socket and keeps the raw bytes of each. */
function packetReader (socket: Socket): { packets: Array<mqttPacket.Packet & { raw: Buffer }>, next: (cmd: string, pred?: (p: any) => boolean) => Promise<any> } {
  const packets: Array<mqttPacket.Packet & { raw: Buffer }> = []
  const waiters = new Set<() => void>()
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  let pending = Buffer.alloc(0)
  parser.on('packet', (p: mqttPacket.Packet) => {
    // mqtt-packet parses whole packets; the raw bytes are what it consumed.
    const raw = pending.subarray(0, (p.length ?? 0) + 1 + remainingLength(p.length ?? 0).length)
    pending = pending.subarray(raw.length)
    packets.push(Object.assign(p, { raw: Buffer.from(raw) }))
    for (const w of waiters) w()
  })
  socket.on('data', (d) => { pending = Buffer.concat([pending, d]); parser.parse(d) })
  const taken = new Set<number>()
  return {
    packets,
    /** The first packet of that kind not taken yet (packets may come in any order). */
    next (cmd, pred = () => true) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`no ${cmd} packet; got ${packets.map((p) => p.cmd).join(', ')}`)) }, 8000)
        const check = (): void => {
          const i = packets.findIndex((p, j) => !taken.has(j) && p.cmd === cmd && pred(p))
          if (i < 0) return
          taken.add(i)
          clearTimeout(timer)
          waiters.delete(check)
          resolve(packets[i])
        }
        waiters.add(check)
        check()
      })
    }
  }
}

const mqttSketch = sketchConstants(MQTT_INO)
const wsSketch = sketchConstants(WS_INO)

t.test('the MQTT sketch states what it sends in constants the test can read', async (t) => {
  const { str: s, num: n, source } = mqttSketch
  t.same(Object.keys(s).filter((k) => /^(TOPIC|PAYLOAD|WILL)_/.test(k)).sort(),
    ['PAYLOAD_READING', 'PAYLOAD_STATE', 'TOPIC_COMMANDS', 'TOPIC_PRESENCE', 'TOPIC_READING', 'WILL_PAYLOAD'])
  t.match(n, { KEEPALIVE_S: Number, QOS: 1 })
  // The calls that use them, as written in the sketch.
  t.match(source, /mqtt\.setCleanSession\(false\);/)
  t.match(source, /mqtt\.setKeepAliveInterval\(KEEPALIVE_S \* 1000\);/)
  t.match(source, /mqtt\.beginWill\(topic, \(unsigned short\)strlen\(WILL_PAYLOAD\), true, QOS\);/)
  t.match(source, /mqtt\.subscribe\(topic, QOS\);/)
  t.match(source, /publish\("led", payload, true\);/)
  t.match(source, /publish\("temp", payload, false\);/)
  t.match(source, /mqtt\.beginMessage\(topic, \(unsigned long\)strlen\(body\), retain, QOS\);/)
})

t.test('device-sim sends what the MQTT sketch sends: CONNECT byte for byte, same topics and payloads', async (t) => {
  const { str: s, num: n } = mqttSketch
  const id = s.DEVICE_ID as string
  t.equal(id, 'esp32-1', 'device-sim --prefix esp32 --count 1 names its device the same')
  // A tiny broker that records what device-sim sends and answers as a broker would.
  let reader: ReturnType<typeof packetReader> | undefined
  const gotClient = new Promise<Socket>((resolve) => {
    const server = createServer((socket) => { reader = packetReader(socket); resolve(socket) })
    server.listen(0, '127.0.0.1')
    t.teardown(() => new Promise<void>((r) => { server.close(() => r()) }))
    server.once('listening', () => startSim((server.address() as { port: number }).port))
  })
  let sim: ReturnType<typeof spawn> | undefined
  function startSim (port: number): void {
    sim = spawn(process.execPath, [join(PROJECT_DIR, 'examples', 'device-sim.mjs'), '--url', `mqtt://127.0.0.1:${port}`,
      '--prefix', 'esp32', '--count', '1', '--interval', '200', '--duration', '30', '--keepalive', String(n.KEEPALIVE_S)], { stdio: 'ignore' })
    t.teardown(() => { sim?.kill('SIGKILL') })
  }
  const socket = await gotClient
  t.teardown(() => { socket.destroy() })
  const r = reader!
  const conn = await r.next('connect')
  const expected = arduinoConnect(id, n.KEEPALIVE_S as number, false, { topic: sprintf(s.TOPIC_PRESENCE as string, id), payload: s.WILL_PAYLOAD as string, qos: n.QOS as number, retain: true })
  t.same(conn.raw.toString('hex'), expected.toString('hex'), 'CONNECT: identical bytes')
  t.match(conn, { clientId: id, clean: false, keepalive: n.KEEPALIVE_S, will: { topic: `presence/${id}`, qos: 1, retain: true } })
  socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }))

  const sub = await r.next('subscribe')
  t.same(sub.subscriptions, [{ topic: sprintf(s.TOPIC_COMMANDS as string, id), qos: n.QOS }], 'SUBSCRIBE: the same filter and QoS')
  socket.write(mqttPacket.generate({ cmd: 'suback', messageId: sub.messageId, granted: [1] }))

  const reading = await r.next('publish', (p) => p.topic === sprintf(s.TOPIC_READING as string, id, 'temp'))
  t.match(reading, { qos: n.QOS, retain: false }, 'a reading: QoS 1, not retained')
  const payload = reading.payload.toString()
  t.equal(reformat(s.PAYLOAD_READING as string, payload), payload, `payload ${payload} is PAYLOAD_READING`)
  t.equal(reading.raw.toString('hex'), arduinoPublish(reading.messageId, reading.topic, payload, 1, false).toString('hex'), 'PUBLISH: identical bytes')
  socket.write(mqttPacket.generate({ cmd: 'puback', messageId: reading.messageId }))

  // A command, as the broker would forward it.
  socket.write(mqttPacket.generate({ cmd: 'publish', topic: `cmd/${id}/led`, payload: Buffer.from('on'), qos: 1, messageId: 7, retain: false, dup: false }))
  const ack = await r.next('puback', (p) => p.messageId === 7)
  t.equal(ack.raw.toString('hex'), arduinoPuback(7).toString('hex'), 'PUBACK of the command')
  const state = await r.next('publish', (p) => p.topic === sprintf(s.TOPIC_READING as string, id, 'led'))
  t.match(state, { qos: n.QOS, retain: true }, 'the LED state: QoS 1, retained, as the sketch publishes it')
  const statePayload = state.payload.toString()
  t.equal(reformat(s.PAYLOAD_STATE as string, statePayload), statePayload, `payload ${statePayload} is PAYLOAD_STATE`)
  t.match(statePayload, /^\{"v":1,/)
})

t.test("the MQTT sketch's packets, replayed, are accepted; /ws sees its reading and presence", async (t) => {
  const { str: s, num: n } = mqttSketch
  const id = s.DEVICE_ID as string
  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'dash' })
  await hub.subscribe('sensors/#')
  const socket = connect(Number(new URL(urls.mqtt).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  await new Promise((resolve) => socket.once('connect', resolve))
  const r = packetReader(socket)

  const will = { topic: sprintf(s.TOPIC_PRESENCE as string, id), payload: s.WILL_PAYLOAD as string, qos: n.QOS as number, retain: true }
  socket.write(arduinoConnect(id, n.KEEPALIVE_S as number, false, will))
  t.match(await r.next('connack'), { returnCode: 0 })
  t.match(await hub.waitJson('presence', (f) => f.clientId === id && f.status === 'online'), { via: 'mqtt', name: id })
  socket.write(arduinoSubscribe(1, sprintf(s.TOPIC_COMMANDS as string, id), n.QOS as number))
  t.same((await r.next('suback')).granted, [1])

  const reading = sprintf(s.PAYLOAD_READING as string, 21.5, Date.now())
  socket.write(arduinoPublish(2, sprintf(s.TOPIC_READING as string, id, 'temp'), reading, n.QOS as number, false))
  t.match(await r.next('puback'), { messageId: 2 })
  t.match(await hub.waitMessage(`sensors/${id}/temp`), { payload: reading, qos: 1, via: 'mqtt' }, '/ws sees the reading as sent')

  hub.send({ type: 'publish', topic: `cmd/${id}/led`, payload: 'on', qos: 1 })
  const cmd = await r.next('publish', (p) => p.topic === `cmd/${id}/led`)
  t.match(cmd, { qos: 1 })
  t.equal(cmd.payload.toString(), 'on')
  socket.write(arduinoPuback(cmd.messageId))
  const state = sprintf(s.PAYLOAD_STATE as string, 1, Date.now())
  socket.write(arduinoPublish(3, sprintf(s.TOPIC_READING as string, id, 'led'), state, n.QOS as number, true))
  await r.next('puback', (p) => p.messageId === 3)
  const late = await openMqtt(t, urls.mqtt)
  const kept = nextMqttMessage(late, (topic) => topic === `sensors/${id}/led`)
  await late.subscribeAsync(`sensors/${id}/led`)
  t.match(await kept, { retain: true })

  socket.resetAndDestroy() // the board loses power
  await hub.waitJson('presence', (f) => f.clientId === id && f.status === 'offline')
})

t.test("the WebSocket sketch's frames: readings equal the simulator's, commands arrive as lines", async (t) => {
  const { str: s } = wsSketch
  const id = s.DEVICE_ID as string
  // The reading formats are the MQTT sketch's (and so device-sim's).
  for (const k of ['TOPIC_READING', 'PAYLOAD_READING', 'PAYLOAD_STATE']) t.equal(s[k], mqttSketch.str[k], `${k} is shared`)
  t.match(wsSketch.source, /publish\("temp", body, false\);/)
  t.match(wsSketch.source, /publish\("led", body, true\);/)

  const { urls } = await startGateway(t)
  const sub = await openMqtt(t, urls.mqtt)
  await sub.subscribeAsync('sensors/#')
  const httpBase = new URL(urls.ws)
  const device = new WebSocket(`ws://${httpBase.host}${sprintf(s.HUB_PATH as string, id, id)}`)
  t.teardown(() => { device.terminate() })
  const lines: string[] = []
  device.on('message', (d) => lines.push(d.toString()))
  await new Promise((resolve, reject) => { device.once('open', resolve); device.once('error', reject) })

  // escapeJson() in the sketch escapes " and \ only, as JSON.stringify does for these payloads.
  const escape = (p: string): string => JSON.stringify(p).slice(1, -1)
  const reading = sprintf(s.PAYLOAD_READING as string, 21.5, Date.now())
  const got = nextMqttMessage(sub, (topic) => topic === `sensors/${id}/temp`)
  device.send(sprintf(s.FRAME_PUBLISH as string, sprintf(s.TOPIC_READING as string, id, 'temp'), escape(reading), 'false'))
  t.equal((await got).payload.toString(), reading, 'an MQTT subscriber gets exactly the payload device-sim would send')

  // Its room is its command channel: a line there reaches it as "name: text".
  const alice = await openHub(t, urls.ws, { name: 'alice', room: id })
  await alice.waitJson('history')
  alice.send('led on')
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no command line; got ${JSON.stringify(lines)}`)), 5000)
    const check = (): void => { if (lines.includes('alice: led on')) { clearTimeout(timer); resolve() } else device.once('message', check) }
    check()
  })
  t.notOk(lines.some((l) => l.startsWith('{')), 'format=text: plain lines only, no JSON to parse on the device')

  const state = sprintf(s.PAYLOAD_STATE as string, 1, Date.now())
  device.send(sprintf(s.FRAME_PUBLISH as string, sprintf(s.TOPIC_READING as string, id, 'led'), escape(state), 'true'))
  const late = await openMqtt(t, urls.mqtt)
  const kept = nextMqttMessage(late, (topic) => topic === `sensors/${id}/led`)
  await late.subscribeAsync(`sensors/${id}/led`)
  const k = await kept
  t.same([k.payload.toString(), k.retain], [state, true], 'the LED state, retained')
})
