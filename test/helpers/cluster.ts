// A real redis-server for the cluster tests: a free loopback port, nothing on disk,
// stopped by its PID at teardown; restartable on the same port.
import { spawn, type ChildProcess } from 'node:child_process'
import { connect, createServer } from 'node:net'
import { startCli, type RunningCli } from './cli.js'
import { requireProgram } from './gateway.js'

/** requireProgram with tap's own fail/comment (their signatures are wider than the helper's). */
export function needs (t: { fail (...a: any[]): unknown, comment (...a: any[]): unknown }, program: string, pkg: string): boolean {
  return requireProgram({ fail: (m) => { t.fail(m ?? '') }, comment: (...m) => { t.comment(...m) } }, program, pkg)
}

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly pid: number | undefined
  /** SIGKILLs the server and resolves once it is gone. */
  kill (): Promise<void>
  /** Starts a fresh (empty) server on the same port; resolves once it accepts connections. */
  start (): Promise<void>
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

/** Starts redis-server on 127.0.0.1 and a free port; killed at teardown. */
export async function startRedis (t: { teardown (fn: () => unknown): void }): Promise<RedisServer> {
  const port = await freePort()
  let proc: ChildProcess | undefined
  const launch = (): Promise<void> => new Promise((resolve, reject) => {
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
    proc = p
    let out = ''
    const timer = setTimeout(() => reject(new Error(`redis-server on ${port} not ready within 5 s: ${out}`)), 5000)
    p.stdout!.on('data', (d) => {
      out += d.toString()
      if (out.includes('Ready to accept connections')) { clearTimeout(timer); resolve() }
    })
    p.stderr!.on('data', (d) => { out += d.toString() })
    p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited ${code}: ${out}`)) })
  })
  const kill = async (): Promise<void> => {
    const p = proc
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const gone = new Promise<void>((resolve) => p.once('exit', () => resolve()))
    p.kill('SIGKILL')
    await gone
  }
  t.teardown(kill)
  await launch()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return proc?.pid },
    kill,
    start: launch
  }
}

/**
 * Keeps Redis busy for `ms` with a script that spins (scripts are atomic): commands
 * sent meanwhile stay unanswered, as if in flight. Resolves when the script ends or the
 * server goes away.
 */
export function blockRedis (port: number, ms: number): Promise<void> {
  const lua = `local s = redis.call('TIME') local t0 = s[1] * 1000000 + s[2] repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - t0 > ${ms * 1000}`
  const arg = (x: string): string => `$${Buffer.byteLength(x)}\r\n${x}\r\n`
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(`*3\r\n${arg('EVAL')}${arg(lua)}${arg('0')}`))
    sock.once('data', () => sock.end())
    sock.once('error', () => resolve())
    sock.once('close', () => resolve())
  })
}

/** GET /api/health: the status code and body. */
export async function health (node: RunningCli): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(`${node.urls.http}/api/health`)
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

/**
 * Asks `probe` every `everyMs` until it returns true, for at most `timeoutMs`: for
 * states that have no event to wait on (a health endpoint turning 503).
 */
export async function until (what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try { if (await probe()) return } catch {}
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Waits until both nodes know each other (their health says nodes: 2). */
export async function clusterFormed (nodes: RunningCli[]): Promise<void> {
  await until('the nodes to find each other', async () => {
    for (const n of nodes) if ((await health(n)).body.nodes !== nodes.length) return false
    return true
  }, 15_000)
}

/** Redis and two gateway nodes on it (`--memory`), once they see each other. */
export async function startTwoNodes (t: { teardown (fn: () => unknown): void }): Promise<{ redis: RedisServer, a: RunningCli, b: RunningCli }> {
  const redis = await startRedis(t)
  const args = ['--redis', redis.url, '--memory']
  const [a, b] = await Promise.all([startCli(t, args), startCli(t, args)]) as [RunningCli, RunningCli]
  await clusterFormed([a, b])
  return { redis, a, b }
}
