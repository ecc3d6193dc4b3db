// Small statistics for the live figures: sliding windows, percentiles, rates.

/** Nearest-rank percentile (p in 0..100) of numbers; NaN for none. */
export function percentile (values, p) {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

/** The mean of numbers; NaN for none. */
export function mean (values) {
  if (values.length === 0) return NaN
  let sum = 0
  for (const v of values) sum += v
  return sum / values.length
}

/** Keeps the last `size` numbers. */
export class Window {
  /** @param {number} size */
  constructor (size) { this.size = size; this.values = [] }
  push (v) { this.values.push(v); if (this.values.length > this.size) this.values.splice(0, this.values.length - this.size) }
  clear () { this.values.length = 0 }
  get length () { return this.values.length }
  p (q) { return percentile(this.values, q) }
  mean () { return mean(this.values) }
}

/** Events per second over the last `spanMs` (bounded: at most `max` timestamps kept). */
export class Rate {
  constructor (spanMs = 2000, max = 20000) { this.spanMs = spanMs; this.max = max; this.times = [] }
  hit (now = performance.now()) { this.times.push(now); if (this.times.length > this.max) this.times.shift() }
  perSecond (now = performance.now()) {
    const from = now - this.spanMs
    while (this.times.length && this.times[0] < from) this.times.shift()
    return this.times.length / (this.spanMs / 1000)
  }
}

/** Formats a number for a figure: '-' when there is none yet. */
export function fmt (value, digits = 1) {
  if (!Number.isFinite(value)) return '–'
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US')
  return value.toFixed(digits)
}

/** 1234567 -> '1.2 MB'. */
export function fmtBytes (n) {
  if (!Number.isFinite(n)) return '–'
  if (n < 1024) return `${Math.round(n)} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

/**
 * What a cumulative histogram (Prometheus `le` counts, as /api/stats `latency.doors.<door>`
 * gives them) gained between two snapshots: per-bucket counts, not cumulative. Undefined
 * when either snapshot lacks it or the counter went backwards (the gateway restarted).
 * @param {{count: number, sumMs: number, counts: number[]}|undefined} before
 * @param {{count: number, sumMs: number, counts: number[]}|undefined} after
 */
export function histogramDelta (before, after) {
  if (!before || !after || !Array.isArray(before.counts) || !Array.isArray(after.counts)) return undefined
  if (before.counts.length !== after.counts.length || after.count < before.count) return undefined
  const bins = after.counts.map((c, i) => (c - (after.counts[i - 1] ?? 0)) - (before.counts[i] - (before.counts[i - 1] ?? 0)))
  if (bins.some((b) => b < 0)) return undefined
  return { count: after.count - before.count, sumMs: after.sumMs - before.sumMs, bins }
}

/**
 * A percentile from bucket counts: the bucket holding that rank, linearly interpolated
 * between its bounds (what Prometheus's histogram_quantile does). Past the last finite
 * bound it answers that bound. NaN for no samples.
 * @param {readonly number[]} bounds upper bounds of the finite buckets
 * @param {number[]} bins counts per bucket, one more than bounds (+Inf last)
 * @param {number} p 0..100
 */
export function histogramPercentile (bounds, bins, p) {
  const total = bins.reduce((a, b) => a + b, 0)
  if (total === 0) return NaN
  const rank = (p / 100) * total
  let below = 0
  for (let i = 0; i < bins.length; i++) {
    const n = bins[i]
    if (n > 0 && below + n >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1]
      const lo = i === 0 ? 0 : bounds[i - 1]
      return lo + (bounds[i] - lo) * ((rank - below) / n)
    }
    below += n
  }
  return bounds[bounds.length - 1]
}
