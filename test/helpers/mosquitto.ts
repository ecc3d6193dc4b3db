// A real mosquitto broker on a loopback port, as the upstream of bridge tests.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'

export interface Mosquitto {
  readonly port: number
  readonly url: string
  readonly dir: string
  proc: ChildProcess
  log: () => string
  /** SIGTERM (mosquitto saves its persistence) and wait for the exit. */
  stop (): Promise<void>
  /** Starts it again on the same port with the same config. */
  start (): Promise<void>
}

/** A free loopback port (closed again before mosquitto takes it). */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/**
 * Starts mosquitto with `listener PORT 127.0.0.1` plus `extra` config lines (anonymous
 * allowed unless extra says otherwise). Resolves once it accepts an MQTT connection.
 */
export async function startMosquitto (t: { teardown (fn: () => unknown): void }, extra: string[] = [], opts: { scheme?: 'mqtt' | 'mqtts', probe?: mqtt.IClientOptions } = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-mosq-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  const hasAnon = extra.some((l) => l.startsWith('allow_anonymous'))
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, ...(hasAnon ? [] : ['allow_anonymous true']), 'log_dest stderr', 'log_type error', 'log_type warning',
    // As root, mosquitto drops to the `mosquitto` user, who cannot read our 0700 temp dir.
    ...(process.getuid?.() === 0 ? ['user root'] : []), ...extra, ''].join('\n'))
  let out = ''
  const m: Mosquitto = {
    port,
    url: `${opts.scheme ?? 'mqtt'}://127.0.0.1:${port}`,
    dir,
    proc: undefined as unknown as ChildProcess,
    log: () => out,
    async stop () {
      const p = m.proc
      if (p.exitCode !== null || p.signalCode !== null) return
      const gone = new Promise<void>((resolve) => p.once('exit', () => resolve()))
      p.kill('SIGTERM')
      const timer = setTimeout(() => p.kill('SIGKILL'), 5000)
      await gone
      clearTimeout(timer)
    },
    async start () {
      const p = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
      m.proc = p
      p.stdout!.on('data', (d) => { out += d })
      p.stderr!.on('data', (d) => { out += d })
      const deadline = Date.now() + 10_000
      // Bounded: one connection attempt at a time, up to 10 s.
      for (;;) {
        if (p.exitCode !== null) throw new Error(`mosquitto exited ${p.exitCode}: ${out}`)
        const ok = await new Promise<boolean>((resolve) => {
          const c = mqtt.connect(m.url, { reconnectPeriod: 0, connectTimeout: 2000, rejectUnauthorized: false, ...opts.probe })
          c.once('connect', () => { c.end(true); resolve(true) })
          c.once('error', () => { c.end(true); resolve(false) })
          c.once('close', () => resolve(false))
        })
        if (ok) return
        if (Date.now() > deadline) throw new Error(`mosquitto did not accept connections within 10 s: ${out}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  t.teardown(() => { if (m.proc && m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL') })
  await m.start()
  return m
}

/** Polls `probe` every 50 ms until it returns a value that is not undefined, up to timeoutMs. */
export async function until<T> (probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
