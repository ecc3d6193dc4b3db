#!/usr/bin/env node
// @ts-check
// A serial port on the topic space: each line the device writes becomes a publish on
// --pub-topic, and each message on --sub-topic is written to the device as a line.
// This is how a microcontroller with only a USB cable (no network) joins: it prints
// lines, it reads lines.
//
//   node examples/serial-bridge.mjs --device /dev/ttyUSB0 --baud 115200
//   node examples/serial-bridge.mjs --device /dev/ttyACM0 --pub-topic sensors/bench/raw --sub-topic cmd/bench/#
//
// The port is opened with node:fs (no native module; see openPort). The baud rate is set
// with `stty -F <device> <baud> raw -echo` when stty exists (Linux; on macOS stty
// takes -f); without stty, set the port up once by hand and leave out --baud.
import { spawnSync } from 'node:child_process'
import { closeSync, constants, createReadStream, createWriteStream, openSync } from 'node:fs'
import { basename } from 'node:path'
import { isatty, ReadStream as TtyReadStream, WriteStream as TtyWriteStream } from 'node:tty'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt'

const HELP = `usage: node examples/serial-bridge.mjs --device PATH [options]

  --device PATH       the serial port, e.g. /dev/ttyUSB0 (required)
  --baud N            set this baud rate with stty first (default: leave the port as it is)
  --url URL           broker (mqtt://localhost:1883; ws://HOST:3000/mqtt works too)
  --pub-topic T       topic for lines read from the port (serial/<port name>/rx)
  --sub-topic F       filter whose messages are written to the port (serial/<port name>/tx)
  --qos 0|1           QoS both ways (0)`

/** A line longer than this is cut: a device printing without newlines must not fill our memory. */
const MAX_LINE = 4096
const BAUDS = new Set([1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600])

function main () {
  const { values: v } = parseArgs({
    options: {
      device: { type: 'string' },
      baud: { type: 'string' },
      url: { type: 'string', default: 'mqtt://localhost:1883' },
      'pub-topic': { type: 'string' },
      'sub-topic': { type: 'string' },
      qos: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (v.help) { console.log(HELP); process.exit(0) }
  const device = v.device
  if (!device) fail('--device is required (for example /dev/ttyUSB0)')
  const port = basename(device)
  const pubTopic = v['pub-topic'] ?? `serial/${port}/rx`
  const subTopic = v['sub-topic'] ?? `serial/${port}/tx`
  if (/[+#]/.test(pubTopic)) fail('--pub-topic must not contain + or #')
  const qos = v.qos === '1' ? 1 : v.qos === '0' ? 0 : fail('--qos must be 0 or 1')

  if (v.baud !== undefined) setBaud(device, Number(v.baud))

  const { input, output, close } = openPort(device)
  const client = mqtt.connect(v.url ?? '', { clientId: `serial-${port}-${process.pid}`, keepalive: 30, reconnectPeriod: 2000 })
  client.on('connect', () => {
    console.error(`* ${device} -> ${pubTopic}; ${subTopic} -> ${device}`)
    client.subscribe(subTopic, { qos }, (err) => { if (err) console.error(`serial-bridge: subscribe ${subTopic}: ${err.message}`) })
  })
  client.on('error', (err) => console.error(`serial-bridge: ${err.message}`))
  client.on('offline', () => console.error('* broker offline; reconnecting'))

  // Devices end lines with \n or \r\n. A device that prints without newlines gets its
  // text cut every MAX_LINE characters rather than growing our buffer for ever.
  let pending = ''
  input.setEncoding('utf8')
  input.on('data', (/** @type {string} */ chunk) => {
    pending += chunk
    let nl
    while ((nl = pending.indexOf('\n')) >= 0 || pending.length >= MAX_LINE) {
      const end = nl >= 0 && nl < MAX_LINE ? nl : MAX_LINE
      const line = pending.slice(0, end).replace(/\r$/, '')
      pending = pending.slice(end === nl ? end + 1 : end)
      publishLine(line)
    }
  })
  /** @param {string} line */
  const publishLine = (line) => {
    if (line.length === 0) return
    // While the broker is away, lines are dropped, not queued: a sensor's old lines are noise.
    if (!client.connected) return
    client.publish(pubTopic, line, { qos })
  }
  input.on('end', () => { console.error(`serial-bridge: ${device} closed`); stop(1) })
  input.on('error', (err) => { console.error(`serial-bridge: reading ${device}: ${err.message}`); stop(1) })
  output.on('error', (err) => { console.error(`serial-bridge: writing ${device}: ${err.message}`); stop(1) })

  client.on('message', (_topic, payload) => {
    // One message, one line: a newline inside would look like two lines to the device.
    const line = payload.toString('utf8').replace(/[\r\n]+/g, ' ')
    output.write(`${line}\n`)
  })

  let stopping = false
  /** @param {number} code */
  function stop (code) {
    if (stopping) return
    stopping = true
    process.exitCode = code
    client.end(false, {}, () => {
      output.end(() => { close(); process.exit() })
    })
  }
  process.once('SIGINT', () => stop(0))
  process.once('SIGTERM', () => stop(0))
}

/**
 * Opens the port with node:fs, once for reading and once for writing. A terminal
 * device (a serial port, a pty) is then read and written through node:tty streams on
 * those descriptors: non-blocking, watched by the event loop. fs streams would read
 * in libuv's thread pool, where a read waits until the device speaks, and Node's exit
 * waits for that read: a quiet device would keep us from ever ending. A path that is
 * not a terminal (a FIFO, a file) gets plain fs streams.
 * @param {string} device
 * @returns {{ input: import('node:stream').Readable, output: import('node:stream').Writable, close: () => void }}
 */
function openPort (device) {
  /** @type {number[]} */
  const fds = []
  /** @param {number} flags */
  const open = (flags) => {
    try {
      // O_NOCTTY: the port must not become our controlling terminal (a hang-up on it would end us).
      const fd = openSync(device, flags | constants.O_NOCTTY)
      fds.push(fd)
      return fd
    } catch (err) {
      return fail(`cannot open ${device}: ${/** @type {Error} */ (err).message}`)
    }
  }
  const rfd = open(constants.O_RDONLY)
  const wfd = open(constants.O_WRONLY)
  const close = () => { for (const fd of fds) { try { closeSync(fd) } catch {} } }
  if (isatty(rfd)) {
    const input = new TtyReadStream(rfd)
    // Raw: no echo back to the device, no line editing, every byte as it came.
    input.setRawMode(true)
    return { input, output: new TtyWriteStream(wfd), close: () => { input.destroy(); close() } }
  }
  return { input: createReadStream('', { fd: rfd, autoClose: false }), output: createWriteStream('', { fd: wfd, autoClose: false }), close }
}

/**
 * Sets the line speed (and raw mode: no echo, no line editing, bytes as they are).
 * @param {string} device
 * @param {number} baud
 */
function setBaud (device, baud) {
  if (!BAUDS.has(baud)) fail(`--baud must be one of ${[...BAUDS].join(', ')}`)
  const flag = process.platform === 'darwin' ? '-f' : '-F'
  const r = spawnSync('stty', [flag, device, String(baud), 'raw', '-echo'], { encoding: 'utf8' })
  if (r.error) {
    console.error(`serial-bridge: stty is not available (${r.error.message}); leaving ${device} as it is`)
    return
  }
  if (r.status !== 0) fail(`stty could not set ${device} to ${baud} baud: ${r.stderr.trim()}`)
}

/** @param {string} msg @returns {never} */
function fail (msg) {
  console.error(`serial-bridge: ${msg}`)
  process.exit(2)
}

main()
