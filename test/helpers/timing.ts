// Time budgets for parsers of client input (issue 13): the worst input found for each
// parser is run at doubling sizes up to the default limit. A quadratic parser goes over
// the budget at a small size and the run stops there, so a regression fails in a second
// instead of hanging the suite for minutes.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'

/** What one input may block the event loop for (issue 13: "no single input > ~50 ms"). */
export const INPUT_BUDGET_MS = 50

export interface Timing { readonly size: number, readonly ms: number }

/** The fastest of `runs` calls, in ms: a shared machine adds noise, never removes it. */
export function bestOf (fn: () => unknown, runs = 5): number {
  let best = Infinity
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    try { fn() } catch {}
    best = Math.min(best, performance.now() - t0)
  }
  return best
}

/**
 * Runs `fn(make(n))` for n = 1024, 2048, ... up to `max` (always ending at `max`), and
 * stops at the first size over `budgetMs`. Returns every timing; the last one is the
 * largest size tried.
 */
export function timeUpTo<I> (make: (n: number) => I, fn: (input: I) => unknown, max: number, budgetMs = INPUT_BUDGET_MS): Timing[] {
  const out: Timing[] = []
  const sizes: number[] = []
  for (let n = 1024; n < max; n *= 2) sizes.push(n)
  sizes.push(max)
  for (const size of sizes) {
    const input = make(size)
    const ms = bestOf(() => fn(input))
    out.push({ size, ms })
    if (ms > budgetMs) break
  }
  return out
}

/** "1024:0.1 2048:0.2 ..." for a test comment. */
export function describe (timings: readonly Timing[]): string {
  return timings.map((x) => `${x.size}:${x.ms.toFixed(1)}ms`).join(' ')
}

const RESOLUTION_MS = 5

/**
 * Event-loop delay over a stretch of work: max and p99 in ms beyond the sampling
 * interval (perf_hooks histogram; the same reading as src/core/loop-lag.ts).
 */
export class LoopLag {
  readonly #h = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  constructor () { this.#h.enable() }
  get maxMs (): number { return this.#h.count ? Math.max(0, this.#h.max / 1e6 - RESOLUTION_MS) : 0 }
  get p99Ms (): number { return this.#h.count ? Math.max(0, this.#h.percentile(99) / 1e6 - RESOLUTION_MS) : 0 }
  reset (): void { this.#h.reset() }
  stop (): { maxMs: number, p99Ms: number } {
    this.#h.disable()
    return { maxMs: this.maxMs, p99Ms: this.p99Ms }
  }
}
