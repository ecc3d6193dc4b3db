import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'

/** Event-loop delay over a recent window, in ms beyond the sampling interval. */
export interface LoopLagFigures {
  /** The longest stall seen. */
  readonly maxMs: number
  /** 99th percentile of the samples. */
  readonly p99Ms: number
}

/** Samples every 10 ms: finer costs CPU, coarser hides stalls shorter than it. */
const RESOLUTION_MS = 10
/** The figures cover the last one to two windows: recent enough to alert on, long enough to see a spike. */
const WINDOW_MS = 30_000

/**
 * How long the event loop is kept from running (perf_hooks.monitorEventLoopDelay): every
 * connection waits that long when one input or one task holds it. Issue 13 bounds it at
 * ~50 ms for any single client input. The histogram counts the sampling interval itself,
 * so that is subtracted: an idle loop shows ~0.
 */
export class LoopLagMonitor {
  readonly #h: IntervalHistogram
  readonly #timer: NodeJS.Timeout
  #previous: LoopLagFigures = { maxMs: 0, p99Ms: 0 }

  constructor (windowMs = WINDOW_MS) {
    this.#h = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    this.#h.enable()
    this.#timer = setInterval(() => {
      this.#previous = this.#read()
      this.#h.reset()
    }, windowMs)
    this.#timer.unref()
  }

  #read (): LoopLagFigures {
    if (this.#h.count === 0) return { maxMs: 0, p99Ms: 0 }
    const beyond = (ns: number): number => Math.max(0, ns / 1e6 - RESOLUTION_MS)
    return { maxMs: beyond(this.#h.max), p99Ms: beyond(this.#h.percentile(99)) }
  }

  /** The worse of the current and the previous window, so a scrape never sees a fresh, empty one. */
  figures (): LoopLagFigures {
    const now = this.#read()
    return { maxMs: Math.max(now.maxMs, this.#previous.maxMs), p99Ms: Math.max(now.p99Ms, this.#previous.p99Ms) }
  }

  close (): void {
    clearInterval(this.#timer)
    this.#h.disable()
  }
}
