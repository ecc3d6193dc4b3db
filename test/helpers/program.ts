// Runs a program as a user would (examples, mosquitto clients) and waits on what it prints.
import { spawn, type ChildProcess } from 'node:child_process'

export interface RunningProgram {
  proc: ChildProcess
  out: () => string
  err: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Waits until stdout (or stderr) satisfies pred; fails if the program ends first or after timeoutMs. */
  wait (pred: (text: string) => boolean, what: string, stream?: 'out' | 'err', timeoutMs?: number): Promise<string>
  /** Writes one line to its stdin (with `stdin: true`). */
  say (line: string): void
}

/** Starts `cmd args`; killed at teardown if it is still running. */
export function runProgram (t: { teardown (fn: () => unknown): void }, cmd: string, args: string[], opts: { cwd?: string, stdin?: boolean } = {}): RunningProgram {
  const proc = spawn(cmd, args, { cwd: opts.cwd, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
  const name = [cmd, ...args].join(' ')
  let out = ''
  let err = ''
  const waiters = new Set<() => void>()
  const poke = (): void => { for (const w of waiters) w() }
  proc.stdout!.on('data', (d) => { out += d; poke() })
  proc.stderr!.on('data', (d) => { err += d; poke() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => { poke(); resolve({ code, signal }) }))
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  return {
    proc,
    out: () => out,
    err: () => err,
    exited,
    say (line) { proc.stdin!.write(`${line}\n`) },
    wait (pred, what, stream = 'out', timeoutMs = 8000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const text = stream === 'out' ? out : err
          if (pred(text)) { done(); resolve(text) } else if (proc.exitCode !== null || proc.signalCode !== null) { done(); reject(new Error(`${name} ended without ${what}; stdout: ${out}; stderr: ${err}`)) }
        }
        const timer = setTimeout(() => { done(); reject(new Error(`no ${what} from ${name} within ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`)) }, timeoutMs)
        const done = (): void => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    }
  }
}
