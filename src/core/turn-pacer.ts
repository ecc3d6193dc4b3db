import { performance } from 'node:perf_hooks'

interface Item { fn: (() => void) | undefined, key: string | undefined }

/**
 * Runs work in order, a slice of the event loop at a time. Work runs at once while the
 * current turn has spent less than `sliceMs` on it and nothing is waiting; past that it
 * is queued and run in later turns, `sliceMs` per turn (at least one item), with
 * setImmediate between so the sockets' I/O runs. For bursts that arrive in one poll
 * phase: when 10,000 devices drop at once, their 10,000 wills (each a retained store, a
 * will delete and presence changes) held the loop for 1.3 s and `/api/health` with it.
 *
 * Work may carry a key; `flush(key)` runs that key's waiting work at once (a device that
 * comes back must not have its old will published after its new "online").
 *
 * The queue holds closures only: its size is the burst's, each item already admitted.
 */
export class TurnPacer {
  readonly #sliceMs: number
  #queue: Item[] = []
  #head = 0
  #byKey = new Map<string, Item>()
  #draining = false
  #spent = 0
  #resetting = false

  constructor (sliceMs: number) { this.#sliceMs = sliceMs }

  /** Items waiting. */
  get waiting (): number { return this.#queue.length - this.#head }

  /** Runs `fn` now if this turn has room and nothing waits, else in a later slice, after everything queued before it. */
  run (fn: () => void, key?: string): void {
    if (this.waiting === 0 && this.#spent < this.#sliceMs) {
      const t0 = performance.now()
      try { fn() } catch {}
      this.#spent += performance.now() - t0
      if (!this.#resetting) {
        this.#resetting = true
        setImmediate(this.#reset)
      }
      return
    }
    const item: Item = { fn, key }
    this.#queue.push(item)
    if (key !== undefined) this.#byKey.set(key, item)
    if (this.#draining) return
    this.#draining = true
    setImmediate(this.#drain)
  }

  /** Runs the waiting work of `key`, if any, now. */
  flush (key: string): void {
    const item = this.#byKey.get(key)
    if (!item) return
    this.#byKey.delete(key)
    const fn = item.fn
    item.fn = undefined
    try { fn?.() } catch {}
  }

  readonly #reset = (): void => {
    this.#resetting = false
    this.#spent = 0
  }

  readonly #drain = (): void => {
    const until = performance.now() + this.#sliceMs
    do {
      const item = this.#queue[this.#head] as Item
      this.#queue[this.#head++] = undefined as unknown as Item
      if (item.key !== undefined && this.#byKey.get(item.key) === item) this.#byKey.delete(item.key)
      const fn = item.fn
      item.fn = undefined
      try { fn?.() } catch {}
    } while (this.#head < this.#queue.length && performance.now() < until)
    if (this.#head < this.#queue.length) {
      setImmediate(this.#drain)
      return
    }
    this.#queue = []
    this.#head = 0
    this.#draining = false
  }
}
