// Shared by the fuzz tests: every call is timed, every throw must be one of ours.
import { performance } from 'node:perf_hooks'
import fc from 'fast-check'
import { FusionError, type ErrorCode } from '../../src/core/errors.js'
import { INPUT_BUDGET_MS } from '../helpers/timing.js'

export { fc }

/**
 * A fixed seed unless FUZZ_SEED says otherwise, so CI is repeatable and a failure can be
 * replayed; fast-check prints the seed and the shrunk counterexample when a property fails.
 */
export const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 0x13f00d

/** Runs of each pure-parser property; FUZZ_RUNS scales them for a longer local run. */
export const RUNS = process.env.FUZZ_RUNS !== undefined ? Number(process.env.FUZZ_RUNS) : 500

/** The slowest single call seen by `call`, per parser, for the report. */
export const slowest = new Map<string, number>()

/**
 * Calls `fn(input)`: returns its value, or the FusionError it threw when its code is in
 * `codes`. Anything else thrown (a TypeError, a RangeError, a FusionError with another
 * code) escapes and fails the property. A call over INPUT_BUDGET_MS fails it too.
 */
export function call<I, R> (what: string, fn: (input: I) => R, input: I, codes: readonly ErrorCode[] = []): R | FusionError {
  const t0 = performance.now()
  let out: R | FusionError
  try {
    out = fn(input)
  } catch (err) {
    if (!(err instanceof FusionError) || !codes.includes(err.code)) throw err
    out = err
  }
  let ms = performance.now() - t0
  if (ms > INPUT_BUDGET_MS) {
    // A first call compiles code and a collection can land on any call: the input is to
    // blame only when it is slow again.
    const t1 = performance.now()
    try { fn(input) } catch {}
    ms = Math.min(ms, performance.now() - t1)
  }
  slowest.set(what, Math.max(slowest.get(what) ?? 0, ms))
  if (ms > INPUT_BUDGET_MS) throw new Error(`${what} took ${ms.toFixed(1)} ms on one input, twice (budget ${INPUT_BUDGET_MS} ms)`)
  return out
}

/** Bytes with a few mutations applied: flips, inserts, deletes, a cut. */
export function mutations (): fc.Arbitrary<Array<{ op: 'flip' | 'insert' | 'delete' | 'cut' | 'dup', at: number, byte: number }>> {
  return fc.array(fc.record({
    op: fc.constantFrom('flip', 'insert', 'delete', 'cut', 'dup'),
    at: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 })
  }), { minLength: 1, maxLength: 4 })
}

/** Applies `muts` to `buf` (positions taken modulo the length), returning a new Buffer. */
export function mutate (buf: Buffer, muts: ReadonlyArray<{ op: string, at: number, byte: number }>): Buffer {
  let b = Buffer.from(buf)
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.at % b.length
    switch (m.op) {
      case 'flip': if (b.length) b[at] = (b[at] as number) ^ (1 << (m.byte % 8)); break
      case 'insert': b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]); break
      case 'delete': b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]); break
      case 'cut': b = b.subarray(0, at); break
      case 'dup': b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 8), b.subarray(at)]); break
    }
  }
  return b
}

/** Text mutations of a string (as UTF-16 code units, so lone surrogates happen too). */
export function mutateText (text: string, muts: ReadonlyArray<{ op: string, at: number, byte: number }>): string {
  let s = text
  const chars = ['{', '}', '"', '\\', '[', ']', ',', ':', '\n', '\r', '\u0000', '\uD800', '/', '+', '#', '=', ' ', 'é']
  for (const m of muts) {
    const at = s.length === 0 ? 0 : m.at % s.length
    const c = chars[m.byte % chars.length] as string
    switch (m.op) {
      case 'flip': s = s.slice(0, at) + String.fromCharCode(s.charCodeAt(at) ^ (1 << (m.byte % 7))) + s.slice(at + 1); break
      case 'insert': s = s.slice(0, at) + c + s.slice(at); break
      case 'delete': s = s.slice(0, at) + s.slice(at + 1); break
      case 'cut': s = s.slice(0, at); break
      case 'dup': s = s.slice(0, at) + s.slice(at, at + 8) + s.slice(at); break
    }
  }
  return s
}
