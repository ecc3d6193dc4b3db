// @ts-check
/**
 * Latency samples in a fixed typed array (no allocation per sample). Past the
 * capacity it keeps a uniform random sample (reservoir), so a long run cannot grow
 * memory. Percentiles are exact over what is kept.
 */
export class Samples {
  /** @param {number} [capacity] */
  constructor (capacity = 2_000_000) {
    this.buf = new Float64Array(capacity)
    this.n = 0
    this.seen = 0
    this.max = 0
  }

  /** @param {number} v */
  add (v) {
    this.seen++
    if (v > this.max) this.max = v
    if (this.n < this.buf.length) { this.buf[this.n++] = v; return }
    const j = Math.floor(Math.random() * this.seen)
    if (j < this.buf.length) this.buf[j] = v
  }

  reset () { this.n = 0; this.seen = 0; this.max = 0 }

  /** Percentiles in the unit of the samples. @param {number[]} ps fractions 0..1 */
  percentiles (ps) {
    if (this.n === 0) return ps.map(() => NaN)
    const sorted = this.buf.slice(0, this.n).sort()
    return ps.map((p) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil(p * this.n) - 1))])
  }

  /** p50/p99/max in milliseconds, samples being µs. */
  summaryMs () {
    const [p50, p99] = this.percentiles([0.5, 0.99])
    return { p50: round3(p50 / 1000), p99: round3(p99 / 1000), max: round3(this.max / 1000), samples: this.seen }
  }
}

/** @param {number} x */
export function round3 (x) {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null
}

/** Median of numbers (ignores null/NaN). @param {Array<number|null|undefined>} xs */
export function median (xs) {
  const v = /** @type {number[]} */ (xs.filter((x) => typeof x === 'number' && Number.isFinite(x))).sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = v.length >> 1
  return v.length % 2 ? /** @type {number} */ (v[m]) : (/** @type {number} */ (v[m - 1]) + /** @type {number} */ (v[m])) / 2
}
