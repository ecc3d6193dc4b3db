// Starts the built command (dist/cli/main.js) as a user would and reads its ready line.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PROJECT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = join(PROJECT_DIR, 'dist', 'cli', 'main.js')

export interface ReadyUrls { http: string, ws: string, 'mqtt-ws': string, mqtt: string, [k: string]: string }

export interface RunningCli {
  proc: ChildProcess
  urls: ReadyUrls
  readyLine: string
  stdout: () => string
  stderr: () => string
  dataDir: string | undefined
  /** Sends `signal` and resolves with the exit code and signal (SIGKILL after timeoutMs). */
  stop (signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null, signal: NodeJS.Signals | null, ms: number }>
}

export function parseReadyLine (line: string): ReadyUrls {
  const urls: Record<string, string> = {}
  for (const token of line.slice('mqtt-fusion ready'.length).trim().split(/\s+/)) {
    const eq = token.indexOf('=')
    if (eq > 0) urls[token.slice(0, eq)] = token.slice(eq + 1)
  }
  return urls as ReadyUrls
}

/**
 * Starts `mqtt-fusion --host 127.0.0.1 --http-port 0 --mqtt-port 0` plus `args`, with a
 * fresh --data-dir unless args name one or --memory. Stopped at teardown.
 */
export async function startCli (t: { teardown (fn: () => unknown): void }, args: string[] = [], opts: { env?: Record<string, string>, keepDataDir?: string, timeoutMs?: number } = {}): Promise<RunningCli> {
  let dataDir = opts.keepDataDir
  const extra = [...args]
  if (!extra.includes('--memory') && !extra.includes('--data-dir')) {
    if (!dataDir) {
      dataDir = mkdtempSync(join(tmpdir(), 'fusion-cli-'))
      const d = dataDir
      t.teardown(() => rmSync(d, { recursive: true, force: true }))
    }
    extra.push('--data-dir', dataDir)
  }
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FUSION_')) env[k] = v
  const proc = spawn(process.execPath, [BIN, '--host', '127.0.0.1', '--http-port', '0', '--mqtt-port', '0', ...extra], {
    cwd: PROJECT_DIR, env: { ...env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  proc.stdout!.on('data', (d) => { out += d.toString() })
  proc.stderr!.on('data', (d) => { err += d.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8000): Promise<{ code: number | null, signal: NodeJS.Signals | null, ms: number }> => {
    const t0 = Date.now()
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    const r = await exited
    clearTimeout(timer)
    return { ...r, ms: Date.now() - t0 }
  }
  t.teardown(() => stop('SIGKILL', 2000))
  const readyLine = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within ${opts.timeoutMs ?? 20000} ms; stderr: ${err}`)), opts.timeoutMs ?? 20000)
    const check = (): void => {
      const line = out.split('\n').find((l) => l.startsWith('mqtt-fusion ready'))
      if (line) { clearTimeout(timer); resolve(line.trim()) }
    }
    proc.stdout!.on('data', check)
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`mqtt-fusion exited ${code} before its ready line; stderr: ${err}`)) })
  })
  return { proc, urls: parseReadyLine(readyLine), readyLine, stdout: () => out, stderr: () => err, dataDir, stop }
}

/** Runs the CLI to completion (for option errors); SIGKILL after timeoutMs. */
export function runCli (args: string[], timeoutMs = 8000): Promise<{ code: number | null, stdout: string, stderr: string, timedOut: boolean }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    proc.stdout.on('data', (d) => { stdout += d })
    proc.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL') }, timeoutMs)
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, timedOut }) })
  })
}
