import type { LogFn } from './types.js'

/**
 * One list of stops for the whole gateway. Each part registers its stop right after it
 * is built; `close()` runs them in reverse (last built, first stopped), each on its own:
 * one failing stop is logged and never skips the rest. Safe to call twice: the same
 * promise each time.
 */
export class Lifecycle {
  readonly #stops: Array<{ what: string, stop: () => unknown }> = []
  readonly #log: LogFn
  #closing: Promise<void> | undefined

  constructor (log: LogFn) {
    this.#log = log
  }

  get closing (): boolean { return this.#closing !== undefined }

  /** Registers `stop` for `what` (named in the log line when it fails). */
  add (what: string, stop: () => unknown): void {
    if (this.#closing) throw new Error(`lifecycle: ${what} registered after close`)
    this.#stops.push({ what, stop })
  }

  close (): Promise<void> {
    this.#closing ??= (async () => {
      for (const { what, stop } of this.#stops.reverse()) {
        try { await stop() } catch (err) { this.#log('warn', `close: ${what} failed`, err) }
      }
    })()
    return this.#closing
  }
}

/** Resolves when `p` does or after `ms`, whichever is first. */
export function withDeadline (p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p.then(() => {}), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })]).finally(() => clearTimeout(timer))
}
