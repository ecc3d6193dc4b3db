// examples/serial-bridge.mjs against a socat pseudo-terminal pair: one end is "the
// serial port" the bridge opens, the other plays the device.
import t from 'tap'
import { constants, mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ReadStream } from 'node:tty'
import { startGateway, openHub, requireProgram, type T } from '../helpers/gateway.js'
import { PROJECT_DIR } from '../helpers/cli.js'
import { runProgram, type RunningProgram } from '../helpers/program.js'

function start (t: T, cmd: string, args: string[]): RunningProgram {
  return runProgram(t, cmd, args, { cwd: PROJECT_DIR })
}

/** The device's end of the pair: what it reads (lines the bridge wrote) and a way to write. */
function openDevice (t: T, path: string): { lines: string[], next: (what: string) => Promise<string>, write: (s: string) => void } {
  // A tty stream, not fs: a blocking fs read on a pty would hold this process's exit.
  const rfd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY)
  const wfd = openSync(path, constants.O_WRONLY | constants.O_NOCTTY)
  const input = new ReadStream(rfd)
  t.teardown(() => { input.destroy(); try { closeSync(wfd) } catch {} })
  input.on('error', () => {})
  const lines: string[] = []
  const waiters: Array<() => void> = []
  let buf = ''
  input.setEncoding('utf8')
  input.on('data', (d: string) => {
    buf += d
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1) }
    for (const w of waiters.splice(0)) w()
  })
  let taken = 0
  return {
    lines,
    write: (s) => { writeSync(wfd, s) },
    next (what) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the device read no ${what}; lines so far: ${JSON.stringify(lines)}`)), 8000)
        const check = (): void => {
          if (lines.length > taken) { clearTimeout(timer); resolve(lines[taken++] as string) } else waiters.push(check)
        }
        check()
      })
    }
  }
}

t.test('lines from the port are publishes; messages on the topic are lines to the port', async (t) => {
  if (!requireProgram(t, 'socat', 'socat')) return
  const dir = mkdtempSync(join(tmpdir(), 'fusion-serial-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = join(dir, 'ttyFAKE0')
  const devicePath = join(dir, 'device')
  // The command of the issue, with link= for stable names.
  const socat = start(t, 'socat', ['-d', '-d', `pty,raw,echo=0,link=${port}`, `pty,raw,echo=0,link=${devicePath}`])
  await socat.wait((e) => e.includes('starting data transfer loop'), 'the pty pair', 'err')

  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'bench' })
  await hub.subscribe('serial/#')
  const device = openDevice(t, devicePath)
  const bridge = start(t, process.execPath, [join(PROJECT_DIR, 'examples', 'serial-bridge.mjs'),
    '--device', port, '--baud', '115200', '--url', urls.mqtt, '--pub-topic', 'serial/bench/rx', '--sub-topic', 'serial/bench/tx'])
  await bridge.wait((e) => e.includes(`* ${port} -> serial/bench/rx; serial/bench/tx -> ${port}`), 'subscribed', 'err')

  device.write('temp=21.5\r\nhum=40\n')
  t.match(await hub.waitMessage('serial/bench/rx', (f) => f.payload === 'temp=21.5'), { via: 'mqtt' }, 'CRLF line')
  await hub.waitMessage('serial/bench/rx', (f) => f.payload === 'hum=40')

  // A line in two writes is one line.
  device.write('par')
  device.write('tial\n')
  await hub.waitMessage('serial/bench/rx', (f) => f.payload === 'partial')

  t.equal((await hub.request({ type: 'publish', topic: 'serial/bench/tx', payload: 'led on' })).type, 'ack')
  t.equal(await device.next('command line'), 'led on', 'the message, as a line')
  hub.send({ type: 'publish', topic: 'serial/bench/tx', payload: 'two\nlines' })
  t.equal(await device.next('flattened line'), 'two lines', 'a newline inside a message does not make two lines')

  // A device that never ends its line is cut every 4096 characters, not buffered for ever.
  device.write(`${'x'.repeat(5000)}\n`)
  const first = await hub.waitMessage('serial/bench/rx', (f) => f.payload.startsWith('xxx'))
  t.equal(first.payload.length, 4096)
  const rest = await hub.waitMessage('serial/bench/rx', (f) => f.payload.startsWith('xxx') && f !== first)
  t.equal(rest.payload.length, 904)

  bridge.proc.kill('SIGTERM')
  t.match(await bridge.exited, { code: 0 }, 'SIGTERM ends it at once, even with a read pending on the port')
})

t.test('a missing port: one line naming it, exit 2', async (t) => {
  const bridge = start(t, process.execPath, [join(PROJECT_DIR, 'examples', 'serial-bridge.mjs'), '--device', '/nonexistent/ttyUSB9', '--url', 'mqtt://127.0.0.1:1'])
  t.match(await bridge.exited, { code: 2 })
  t.match(bridge.err(), /^serial-bridge: cannot open \/nonexistent\/ttyUSB9: /)
})
