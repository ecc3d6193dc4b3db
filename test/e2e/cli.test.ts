// The built command (dist/cli/main.js), started as a user would: the ready line, signals,
// bad options, ports in use, environment variables, --memory and --data-dir problems.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import mqtt from 'mqtt'
import { BIN, PROJECT_DIR, parseReadyLine, startCli } from '../helpers/cli.js'
import { OPTION_NAMES, OPTIONS } from '../../src/core/options.js'

const built = existsSync(BIN)
if (!built) t.fail(`${BIN} is missing: npm test builds first (npm run build)`)
const skip = built ? false : 'the command is not built'

const scratch = mkdtempSync(join(tmpdir(), 'fusion-cli-test-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

/**
 * The environment without FUSION_* from the caller's shell and without tap's NODE_OPTIONS
 * (its process-info hook doubles the start time of every child), plus `extra`.
 */
function cleanEnv (extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FUSION_') && k !== 'NODE_OPTIONS') env[k] = v
  return { ...env, ...extra }
}

/** For startCli, which keeps the rest of the environment. */
const FAST = { env: { NODE_OPTIONS: '' } }

/** Runs `fn` over `items`, at most `limit` at a time (two shared cores: no stampede). */
async function pool<I, R> (items: readonly I[], limit: number, fn: (item: I) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as I)
    }
  }))
  return out
}

/** Runs the command to its end (a refused start); stops it if it comes up after all. */
async function runToEnd (args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await launch(args, env, 15_000)
  if (r.stop) await r.stop()
  return r
}

interface Run { code: number | null, stdout: string, stderr: string, timedOut: boolean, ready?: string, stop?: () => Promise<number | null> }

/**
 * Starts the command with exactly `args` and `env`; resolves when it exits or prints its
 * ready line (then `stop` ends it). Killed after `timeoutMs`.
 */
function launch (args: string[], env: Record<string, string>, timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd: PROJECT_DIR, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
    const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL') }, timeoutMs)
    proc.stderr.on('data', (d) => { stderr += d })
    proc.stdout.on('data', (d) => {
      stdout += d
      const line = stdout.split('\n').find((l) => l.startsWith('mqtt-fusion ready'))
      if (line) {
        clearTimeout(timer)
        resolve({ code: null, stdout, stderr, timedOut, ready: line, stop: async () => { proc.kill('SIGTERM'); return await exited } })
      }
    })
    void exited.then((code) => { clearTimeout(timer); resolve({ code, stdout, stderr, timedOut }) })
  })
}

/** A refused start: non-zero, no ready line, at most 3 short lines, one naming `option`, no stack. */
function refused (t: Test, r: { code: number | null, stdout: string, stderr: string, timedOut: boolean }, option: string | RegExp, what: string): void {
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean)
  t.notOk(r.timedOut, `${what}: exits by itself`)
  t.ok(r.code !== 0 && r.code !== null, `${what}: exit code ${r.code} is non-zero`)
  t.notOk(lines.some((l) => l.startsWith('mqtt-fusion ready')), `${what}: no ready line`)
  t.ok(lines.length >= 1 && lines.length <= 3, `${what}: 1 to 3 lines (${lines.length}: ${lines.join(' | ').slice(0, 300)})`)
  t.ok(lines.some((l) => (typeof option === 'string' ? l.includes(option) : option.test(l))), `${what}: a line names ${option}`)
  t.notOk(lines.some((l) => /^at\s|\.js:\d+/.test(l)), `${what}: no stack trace`)
  t.ok(lines.every((l) => l.length <= 200), `${what}: short lines`)
}

function wsClose (url: string): Promise<{ opened: Promise<void>, closed: Promise<number> }> {
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const opened = new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('close', () => reject(new Error('closed before open'))) })
  return opened.then(() => ({ opened, closed }))
}

function listenOn (): Promise<{ server: Server, port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }))
  })
}

t.test('the ready line names every door with its real port, and every door answers', { skip }, async (t) => {
  const cli = await startCli(t, ['--memory'], FAST)
  t.match(cli.readyLine, /^mqtt-fusion ready http=\S+ ws=\S+ mqtt-ws=\S+ mqtt=\S+$/, 'one line, key=url tokens')
  const u = cli.urls
  t.match(u.http, /^http:\/\/127\.0\.0\.1:\d+\/?$/)
  t.match(u.ws, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/)
  t.match(u['mqtt-ws'], /^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/)
  t.match(u.mqtt, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
  const port = (x: string): number => Number(new URL(x).port)
  for (const k of ['http', 'ws', 'mqtt-ws', 'mqtt']) t.ok(port(u[k] as string) > 0, `${k}: a real port, not 0`)
  t.equal(port(u.ws), port(u.http), '/ws is on the HTTP port')
  t.equal(port(u['mqtt-ws']), port(u.http), '/mqtt is on the HTTP port')
  t.equal(cli.stdout().split('\n').filter((l) => l.startsWith('mqtt-fusion ready')).length, 1, 'printed once')

  const health = await fetch(`${u.http.replace(/\/$/, '')}/api/health`, { signal: AbortSignal.timeout(5000) })
  t.equal(health.status, 200, 'http= answers')
  const { closed } = await wsClose(u.ws)
  t.pass('ws= opens')
  for (const url of [u.mqtt, u['mqtt-ws']]) {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 })
    t.pass(`${url} connects`)
    await c.endAsync()
  }
  const stop = await cli.stop('SIGTERM')
  t.equal(stop.code, 0)
  t.equal(await closed, 1001, 'the /ws client was told 1001')
})

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: /ws clients get 1001, MQTT clients are closed, exit 0 within 5 s`, { skip }, async (t) => {
    const cli = await startCli(t, signal === 'SIGINT' ? [] : ['--memory'], FAST)
    const a = await wsClose(`${cli.urls.ws}?name=a`)
    const b = await wsClose(`${cli.urls.ws}?name=b&room=other`)
    const m = await mqtt.connectAsync(cli.urls.mqtt, { reconnectPeriod: 0, connectTimeout: 5000 })
    const mqttClosed = new Promise<void>((resolve) => m.once('close', () => resolve()))
    const r = await cli.stop(signal, 8000)
    t.equal(r.code, 0, 'exit code 0')
    t.equal(r.signal, null, 'not killed by the signal')
    t.ok(r.ms <= 5000, `exited in ${r.ms} ms`)
    t.same(await Promise.all([a.closed, b.closed]), [1001, 1001], 'both /ws clients saw 1001')
    await mqttClosed
    t.pass('the MQTT client was disconnected')
    m.end(true)
    t.notMatch(cli.stderr(), /error|at .*\.js:\d+/i, `nothing alarming on stderr (${cli.stderr().trim().slice(0, 200)})`)
  })
}

t.test('bad options exit non-zero with a short line naming the option', { skip }, async (t) => {
  const base = ['--host', '127.0.0.1', '--memory']
  const badJson = join(scratch, 'bad.json')
  writeFileSync(badJson, '{ "http-port": ')
  const badKey = join(scratch, 'bad-key.json')
  writeFileSync(badKey, JSON.stringify({ 'http-port': 0, colour: 'blue' }))
  const badValue = join(scratch, 'bad-value.json')
  writeFileSync(badValue, JSON.stringify({ 'mqtt-port': 'seven' }))
  const cases: Array<[string[], string | RegExp, string]> = [
    [[...base, '--http-port', 'abc', '--mqtt-port', '0'], 'http-port', '--http-port abc'],
    [[...base, '--http-port', '70000', '--mqtt-port', '0'], 'http-port', '--http-port 70000'],
    [[...base, '--http-port', '0', '--mqtt-port', '-1'], 'mqtt-port', '--mqtt-port -1'],
    [[...base, '--http-port', '0', '--mqtt-port', '0', '--frobnicate'], 'frobnicate', 'an unknown --frobnicate'],
    [[...base, '--http-port', '0', '--mqtt-port', '0', 'stray'], 'stray', 'a stray argument'],
    [[...base, '--http-port'], 'http-port', '--http-port without a value'],
    [[...base, '--http-port', '0', '--mqtt-port', '0', '--config', join(scratch, 'missing.json')], 'config', 'a --config file that does not exist'],
    [[...base, '--http-port', '0', '--mqtt-port', '0', '--config', badJson], 'config', 'a --config file that is not JSON'],
    [[...base, '--http-port', '0', '--mqtt-port', '0', '--config', badKey], 'colour', 'a --config file with an unknown key'],
    [[...base, '--http-port', '0', '--config', badValue], 'mqtt-port', 'a --config file with a bad value'],
    [['--host', '192.0.2.1', '--memory', '--http-port', '0', '--mqtt-port', '0'], '--host 192.0.2.1', 'a --host that is not ours (TEST-NET-1)']
  ]
  const results = await pool(cases, 3, ([args]) => runToEnd(args))
  for (const [i, [, option, what]] of cases.entries()) refused(t, results[i]!, option, what)
})

t.test('a port in use (HTTP or MQTT) exits non-zero naming the option', { skip }, async (t) => {
  const { server, port } = await listenOn()
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = ['--host', '127.0.0.1', '--memory']
  const [http, mq] = await Promise.all([
    runToEnd([...base, '--http-port', String(port), '--mqtt-port', '0']),
    runToEnd([...base, '--http-port', '0', '--mqtt-port', String(port)])
  ])
  refused(t, http!, 'http-port', 'HTTP port in use')
  t.match(http!.stderr, String(port), 'names the port')
  refused(t, mq!, 'mqtt-port', 'MQTT port in use')
  t.match(mq!.stderr, /in use/)
})

t.test('environment variables work, and flags beat them', { skip }, async (t) => {
  const env = { FUSION_HOST: '127.0.0.1', FUSION_HTTP_PORT: '0', FUSION_MQTT_PORT: '0', FUSION_MEMORY: '1' }
  const r = await launch([], env)
  t.ok(r.ready, `starts from the environment alone (${r.stderr.trim().slice(0, 200)})`)
  if (r.ready) {
    const urls = parseReadyLine(r.ready)
    t.match(urls.http, /^http:\/\/127\.0\.0\.1:[1-9]\d*/, 'FUSION_HOST and FUSION_HTTP_PORT=0 were used')
    t.match(r.stderr, /memory/i, 'FUSION_MEMORY=1 is --memory')
    t.equal(await r.stop!(), 0)
  }
  const bad = await launch([], { ...env, FUSION_HTTP_PORT: 'abc' })
  refused(t, bad, 'http-port', 'FUSION_HTTP_PORT=abc')
  const flagWins = await launch(['--http-port', '0'], { ...env, FUSION_HTTP_PORT: 'abc' })
  t.ok(flagWins.ready, '--http-port 0 beats FUSION_HTTP_PORT=abc')
  if (flagWins.stop) t.equal(await flagWins.stop(), 0)
  const config = join(scratch, 'env-config.json')
  writeFileSync(config, JSON.stringify({ host: '127.0.0.1', 'http-port': 0, 'mqtt-port': 0, memory: true }))
  const fromConfig = await launch([], { FUSION_CONFIG: config })
  t.ok(fromConfig.ready, 'FUSION_CONFIG names a config file')
  if (fromConfig.stop) t.equal(await fromConfig.stop(), 0)
})

t.test('--memory says so on stderr; a data dir is used otherwise', { skip }, async (t) => {
  const mem = await startCli(t, ['--memory'], FAST)
  t.match(mem.stderr(), /memory/i, '--memory is announced')
  t.ok(mem.stderr().trim().split('\n').length <= 2, 'in a line or two')
  t.equal((await mem.stop()).code, 0)
  const disk = await startCli(t, [], FAST)
  t.notMatch(disk.stderr(), /memory/i, 'no memory notice with a data dir')
  t.ok(existsSync(join(disk.dataDir!, 'store')), 'the data dir holds the store')
  t.equal((await disk.stop()).code, 0)
})

t.test('a --data-dir that cannot be created or written fails with one line naming it', { skip }, async (t) => {
  const file = join(scratch, 'a-file')
  writeFileSync(file, 'not a directory')
  const base = ['--host', '127.0.0.1', '--http-port', '0', '--mqtt-port', '0']
  const dirs = [join(file, 'sub'), file, '/proc/mqtt-fusion-test/data']
  const readOnly = join(scratch, 'read-only')
  if (process.getuid?.() !== 0) {
    // root writes anywhere: only a normal user can be stopped by permissions
    const { mkdirSync, chmodSync } = await import('node:fs')
    mkdirSync(readOnly)
    chmodSync(readOnly, 0o500)
    dirs.push(readOnly, join(readOnly, 'sub'))
  }
  const results = await pool(dirs, 3, (d) => runToEnd([...base, '--data-dir', d]))
  for (const [i, d] of dirs.entries()) {
    refused(t, results[i]!, d, `--data-dir ${d}`)
    t.match(results[i]!.stderr, 'data-dir', 'names the option too')
  }
})

t.test('a second gateway on the same --data-dir is refused: the store is locked', { skip }, async (t) => {
  const first = await startCli(t, [], FAST)
  const second = await runToEnd(['--host', '127.0.0.1', '--http-port', '0', '--mqtt-port', '0', '--data-dir', first.dataDir!])
  refused(t, second, first.dataDir!, 'the second gateway')
  t.match(second.stderr, /in use|locked/i, 'says the store is in use')
  const health = await fetch(`${first.urls.http}/api/health`, { signal: AbortSignal.timeout(5000) })
  t.equal(health.status, 200, 'the first gateway is unharmed')
  t.equal((await first.stop()).code, 0)
})

t.test('--help and --version', { skip }, async (t) => {
  const [help, version] = await Promise.all([runToEnd(['--help']), runToEnd(['--version'])])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: mqtt-fusion/)
  for (const flag of ['--host', '--http-port', '--mqtt-port', '--data-dir', '--memory', '--redis', '--config']) t.match(help.stdout, flag, `--help lists ${flag}`)
  for (const name of OPTION_NAMES) t.match(help.stdout, `--${OPTIONS[name].flag}`, `--help lists --${OPTIONS[name].flag}`)
  t.equal(version.code, 0)
  t.match(version.stdout, /^mqtt-fusion \d+\.\d+\.\d+/)
  const pkg = JSON.parse(readFileSync(join(PROJECT_DIR, 'package.json'), 'utf8')) as { version: string }
  t.equal(version.stdout, `mqtt-fusion ${pkg.version}\n`, 'the version of package.json')
})
