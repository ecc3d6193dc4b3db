// @ts-check
/**
 * Starts and stops the servers one bench run compares: the gateway (the built CLI),
 * standalone Aedes, the raw ws broadcast server and Mosquitto. Each is a child
 * process pinned to the server core when taskset is available, so the load
 * generator (pinned to another core) never competes with it for CPU.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os, { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/**
 * @typedef {object} Server
 * @property {string} name
 * @property {import('node:child_process').ChildProcess} child
 * @property {number} pid
 * @property {Record<string, string>} urls door -> URL
 * @property {() => Promise<void>} stop
 * @property {string[]} stderrTail last lines the server printed on stderr
 * @property {string[]} [stderrHead] its first lines there (the inspector's address)
 */

/**
 * Which cores to use. `auto` pins (server on core 0, load generator on core 1) when the
 * machine is otherwise quiet; while other work keeps the cores busy (1-minute load
 * average of 1.5 or more; the build that `npm run bench` runs first adds a little) a
 * pinned process cannot move to whichever core frees first and waits behind that
 * work, so then nothing is pinned. `on` and `off` force the choice.
 * @param {'auto' | 'on' | 'off'} [mode]
 */
export function pinning (mode = 'auto') {
  const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0
  const cores = Number(spawnSync('nproc', [], { encoding: 'utf8' }).stdout.trim()) || 1
  const load = os.loadavg()[0] ?? 0
  const none = (/** @type {string} */ note) => ({ server: undefined, loadgen: undefined, cores, note })
  if (mode === 'off') return none('not pinned (--pin off)')
  if (!hasTaskset) return none('not pinned: no taskset')
  if (cores < 2) return none('not pinned: one core')
  if (mode === 'auto' && load >= 1.5) return none(`not pinned: load average ${load.toFixed(1)} from other work at the start (--pin on forces it)`)
  return { server: '0', loadgen: '1', cores, note: 'server on core 0, load generator on core 1 (taskset)' }
}

/** @param {string | undefined} cpu @param {string} cmd @param {string[]} args */
export function pinned (cpu, cmd, args) {
  return cpu === undefined ? { cmd, args } : { cmd: 'taskset', args: ['-c', cpu, cmd, ...args] }
}

/** Resident set size of a process in bytes (Linux), or undefined. @param {number} pid */
export function rssOf (pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch { return undefined }
}

/**
 * The RSS of an idle server once V8 has given back what it does not need. Right after a
 * burst of connections V8 still holds the heap the burst grew (the handshakes' garbage is
 * collected, but the pages stay committed); on an idle process its memory reducer
 * compacts and returns them by itself, some 10-40 s later, or not at all when no full
 * collection came after the growth (seen on both the gateway and a standalone Aedes). So
 * that the figure does not depend on that timing, this asks for the same collection
 * through the inspector (`HeapProfiler.collectGarbage`; the server was started with
 * `--inspect=127.0.0.1:0`, see INSPECT_ARGS), waits for the freed pages to be unmapped,
 * and reads the RSS. Every server compared this way gets the same request.
 * @param {Server} server
 * @returns {Promise<{ rss: number | undefined, error?: string }>}
 */
export async function settledRss (server) {
  const line = [...(server.stderrHead ?? []), ...server.stderrTail].find((l) => l.includes('Debugger listening on ws://'))
  const url = line ? /ws:\/\/\S+/.exec(line)?.[0] : undefined
  if (!url) return { rss: undefined, error: `${server.name} was not started with INSPECT_ARGS` }
  const { default: WebSocket } = await import('ws')
  try {
    await new Promise((resolve, reject) => {
      const ws = new WebSocket(url)
      const timer = setTimeout(() => { ws.terminate(); reject(new Error('no answer from the inspector within 60 s')) }, 60_000)
      ws.on('error', (err) => { clearTimeout(timer); reject(err) })
      ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })))
      ws.on('message', (data) => {
        const m = JSON.parse(String(data))
        if (m.id !== 1) return
        clearTimeout(timer)
        ws.close()
        if (m.error) reject(new Error(m.error.message)); else resolve(undefined)
      })
    })
  } catch (err) {
    return { rss: undefined, error: String(err) }
  }
  await new Promise((resolve) => setTimeout(resolve, 3000))
  return { rss: rssOf(server.pid) }
}

/** Node flags for a server whose settled RSS is read (settledRss): an inspector on a free loopback port. */
export const INSPECT_ARGS = ['--inspect=127.0.0.1:0']

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** CPU seconds (user + system) a process has used so far (Linux), or undefined. @param {number} pid */
export function cpuOf (pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS
  } catch { return undefined }
}

/** A free loopback TCP port (for Mosquitto, which cannot listen on port 0). */
export async function freePort () {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = /** @type {net.AddressInfo} */ (srv.address()).port
  await new Promise((resolve) => srv.close(resolve))
  return port
}

/**
 * Spawns a server and waits for its ready line.
 * @param {string} name
 * @param {{ cmd: string, args: string[] }} command
 * @param {(line: string) => Record<string, string> | undefined} parseReady
 * @param {{ timeoutMs?: number, cwd?: string, onExit?: () => void }} [opts]
 * @returns {Promise<Server>}
 */
export function startProcess (name, command, parseReady, opts = {}) {
  const child = spawn(command.cmd, command.args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  /** @type {string[]} */
  const stderrTail = []
  /** @type {string[]} */
  const stderrHead = []
  const keep = (/** @type {string} */ line) => { if (stderrHead.length < 20) stderrHead.push(line); stderrTail.push(line); if (stderrTail.length > 20) stderrTail.shift() }
  createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stderr) }).on('line', keep)
  const lines = createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) })
  // BENCH_SERVER_LOG=<dir>: every line a server prints, to <dir>/<name>-<pid>.log (with
  // BENCH_GATEWAY_NODE_ARGS="--trace-gc", the gateway's collections during a scenario).
  const logDir = process.env.BENCH_SERVER_LOG
  if (logDir) {
    const t0 = Date.now()
    lines.on('line', (line) => appendFileSync(join(logDir, `${name}-${child.pid}.log`), `${Date.now() - t0} ${line}\n`))
  }
  let exited = false
  child.once('exit', () => { exited = true; opts.onExit?.() })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} did not become ready: ${stderrTail.join(' | ')}`)) }, opts.timeoutMs ?? 15_000)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${code} before ready: ${stderrTail.join(' | ')}`)) })
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    const onLine = (/** @type {string} */ line) => {
      const urls = parseReady(line)
      if (!urls) return
      clearTimeout(timer)
      lines.off('line', onLine)
      resolve({
        name,
        child,
        pid: /** @type {number} */ (child.pid),
        urls,
        stderrTail,
        stderrHead,
        stop: async () => {
          if (exited) return
          child.kill('SIGTERM')
          const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
          await once(child, 'exit').catch(() => {})
          clearTimeout(killer)
        }
      })
    }
    lines.on('line', onLine)
  })
}

/** `prefix k=v k=v` -> { k: v }. @param {string} line @param {string} prefix */
function readyFields (line, prefix) {
  if (!line.startsWith(prefix)) return undefined
  /** @type {Record<string, string>} */
  const out = {}
  for (const part of line.slice(prefix.length).trim().split(/\s+/)) {
    const eq = part.indexOf('=')
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1)
  }
  return out
}

/**
 * Every bench client comes from 127.0.0.1, and one bench publisher sends more than any
 * single real client should: the per-address and per-client guards (which standalone
 * Aedes and the baselines do not have) are lifted so they do not throttle the bench.
 * Their checks still run on every connection and message. Everything else is default.
 */
export const GATEWAY_BENCH_FLAGS = ['--max-connections', '100000', '--max-connections-per-ip', '100000', '--connect-rate', '1000000', '--msg-rate', '0']

/**
 * The built gateway on loopback, ports 0, waiting for its ready line.
 * @param {string} root project root
 * @param {string | undefined} cpu
 * @param {string[]} [args] the store and policy options (default: --memory and the bench flags)
 * @param {string} [name] what errors call it
 */
export function startGateway (root, cpu, args = ['--memory', ...GATEWAY_BENCH_FLAGS], name = 'gateway', extraNodeArgs = []) {
  // BENCH_GATEWAY_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"): Node flags for
  // the gateway alone, to profile it inside any scenario (NODE_OPTIONS refuses --cpu-prof).
  const nodeArgs = [...(process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean), ...extraNodeArgs]
  const cmd = pinned(cpu, process.execPath, [...nodeArgs, join(root, 'dist/cli/main.js'), '--host', '127.0.0.1', '--http-port', '0', '--mqtt-port', '0', ...args])
  return startProcess(name, cmd, (line) => readyFields(line, 'mqtt-fusion ready'), { cwd: root, timeoutMs: 20_000 })
}

/** @param {string} root @param {string | undefined} cpu @param {string[]} [nodeArgs] */
export function startAedes (root, cpu, nodeArgs = []) {
  const cmd = pinned(cpu, process.execPath, [...nodeArgs, join(root, 'bench/baselines/aedes-standalone.mjs')])
  return startProcess('aedes', cmd, (line) => readyFields(line, 'aedes-standalone ready'), { cwd: root })
}

/** @param {string} root @param {string | undefined} cpu */
export function startWsBroadcast (root, cpu) {
  const cmd = pinned(cpu, process.execPath, [join(root, 'bench/baselines/ws-broadcast.mjs')])
  return startProcess('ws-broadcast', cmd, (line) => readyFields(line, 'ws-broadcast ready'), { cwd: root })
}

/**
 * Mosquitto from Debian's package, on loopback, with a TCP and a websockets listener.
 * Resolves undefined (with the reason) when the binary or its websockets support is
 * missing.
 * @param {string | undefined} cpu
 * @returns {Promise<{ server?: Server, skipped?: string }>}
 */
export async function startMosquitto (cpu) {
  const bin = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find((p) => spawnSync(p, ['-h']).error === undefined)
  if (!bin) return { skipped: 'mosquitto not installed (Debian package `mosquitto`)' }
  const version = /mosquitto version ([\d.]+)/.exec(spawnSync(bin, ['-h'], { encoding: 'utf8' }).stdout)?.[1] ?? '?'
  const dir = mkdtempSync(join(tmpdir(), 'fusion-bench-mosquitto-'))
  const tcpPort = await freePort()
  const wsPort = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  // Mosquitto 2.0 will not start with a websockets listener alone, hence the TCP one first.
  writeFileSync(conf, [
    'per_listener_settings false',
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    `listener ${tcpPort} 127.0.0.1`,
    'protocol mqtt',
    `listener ${wsPort} 127.0.0.1`,
    'protocol websockets',
    ''
  ].join('\n'))
  const cmd = pinned(cpu, bin, ['-c', conf])
  const child = spawn(cmd.cmd, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'] })
  /** @type {string[]} */
  const stderrTail = []
  createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stderr) }).on('line', (l) => { stderrTail.push(l); if (stderrTail.length > 20) stderrTail.shift() })
  let exited = false
  child.once('exit', () => { exited = true })
  // No ready line: wait until both ports accept a connection.
  const deadline = Date.now() + 5000
  for (const port of [tcpPort, wsPort]) {
    for (;;) {
      if (exited) {
        rmSync(dir, { recursive: true, force: true })
        return { skipped: `mosquitto ${version} would not start with a websockets listener: ${stderrTail.join(' | ')}` }
      }
      const ok = await new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
        s.on('error', () => resolve(false))
      })
      if (ok) break
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        rmSync(dir, { recursive: true, force: true })
        return { skipped: `mosquitto ${version} did not listen within 5 s` }
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return {
    server: {
      name: `mosquitto ${version}`,
      child,
      pid: /** @type {number} */ (child.pid),
      urls: { mqtt: `mqtt://127.0.0.1:${tcpPort}`, 'mqtt-ws': `ws://127.0.0.1:${wsPort}/mqtt` },
      stderrTail,
      stop: async () => {
        if (!exited) {
          child.kill('SIGTERM')
          const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
          await once(child, 'exit').catch(() => {})
          clearTimeout(killer)
        }
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}
