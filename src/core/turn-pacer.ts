import { performance } from 'node:perf_hooks'

/**
 * Runs queued work in order, a slice of the event loop at a time: each turn takes work
 * until `sliceMs` have passed (at least one item), then yields with setImmediate so the
 * sockets' I/O runs before the next slice. For bursts that arrive in one poll phase: when
 * 10,000 devices drop at once, their 10,000 wills (each a retained store, a will delete
 * and presence changes) held the loop for 1.3 s and `/api/health` with it.
 *
 * The queue holds closures only: its size is the burst's, each item already admitted.
 */
export class TurnPacer {
  readonly #sliceMs: number
  #queue: Array<(() => void) | undefined> = []
  #head = 0
  #scheduled = false

  constructor (sliceMs: number) { this.#sliceMs = sliceMs }

  /** Items waiting. */
  get waiting (): number { return this.#queue.length - this.#head }

  /** Runs `fn` in a later slice, after everything queued before it. */
  run (fn: () => void): void {
    this.#queue.push(fn)
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(this.#drain)
  }

  readonly #drain = (): void => {
    const until = performance.now() + this.#sliceMs
    do {
      const fn = this.#queue[this.#head]
      this.#queue[this.#head++] = undefined
      try { fn?.() } catch {}
    } while (this.#head < this.#queue.length && performance.now() < until)
    if (this.#head < this.#queue.length) {
      setImmediate(this.#drain)
      return
    }
    this.#queue = []
    this.#head = 0
    this.#scheduled = false
  }
}
