// examples/serial-bridge.mjs against a socat pseudo-terminal pair: one end is "the
// serial port" the bridge opens, the other plays the device.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { constants, mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ReadStream } from 'node:tty'
import { startGateway, openHub, requireProgram, type T } from '../helpers/gateway.js'
import { PROJECT_DIR } from '../helpers/cli.js'

interface Proc {
  proc: ChildProcess
  err: () => string
  waitErr (pred: (text: string) => boolean, what: string, timeoutMs?: number): Promise<void>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

function start (t: T, cmd: string, args: string[]): Proc {
  const proc = spawn(cmd, args, { cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  const waiters = new Set<() => void>()
  proc.stdout!.resume()
  proc.stderr!.on('data', (d) => { err += d; for (const w of waiters) w() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => { for (const w of waiters) w(); resolve({ code, signal }) }))
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  return {
    proc,
    err: () => err,
    exited,
    waitErr (pred, what, timeoutMs = 8000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (pred(err)) { done(); resolve() } else if (proc.exitCode !== null || proc.signalCode !== null) { done(); reject(new Error(`${cmd} exited without ${what}: ${err}`)) }
        }
        const timer = setTimeout(() => { done(); reject(new Error(`no ${what} from ${cmd} within ${timeoutMs} ms: ${err}`)) }, timeoutMs)
        const done = (): void => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    }
  }
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
  await socat.waitErr((e) => e.includes('starting data transfer loop'), 'the pty pair')

  const { urls } = await startGateway(t)
  const hub = await openHub(t, urls.ws, { name: 'bench' })
  await hub.subscribe('serial/#')
  const device = openDevice(t, devicePath)
  const bridge = start(t, process.execPath, [join(PROJECT_DIR, 'examples', 'serial-bridge.mjs'),
    '--device', port, '--baud', '115200', '--url', urls.mqtt, '--pub-topic', 'serial/bench/rx', '--sub-topic', 'serial/bench/tx'])
  await bridge.waitErr((e) => e.includes(`* ${port} -> serial/bench/rx; serial/bench/tx -> ${port}`), 'subscribed')

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
