// @ts-check
/**
 * The 64-byte bench payload: printable ASCII (so it travels unchanged through every
 * door, /ws JSON included) carrying the send time and a sequence number.
 *
 *   B<13 digits: send time, µs since this process started>:<10 digits: seq>:xxxx...
 *
 * Publisher and subscribers live in the same load-generator process, so one
 * monotonic clock (performance.now) measures end-to-end latency.
 */

export const PAYLOAD_SIZE = 64
const TS_AT = 1
const TS_DIGITS = 13
const SEQ_AT = TS_AT + TS_DIGITS + 1
const SEQ_DIGITS = 10
const TEMPLATE = Buffer.alloc(PAYLOAD_SIZE, 'x')
TEMPLATE[0] = 0x42 // 'B'
TEMPLATE[TS_AT + TS_DIGITS] = 0x3a // ':'
TEMPLATE[SEQ_AT + SEQ_DIGITS] = 0x3a

/** Microseconds on the process's monotonic clock. */
export function nowUs () {
  return performance.now() * 1000
}

/**
 * Writes the payload into `out` at `at` (no allocation on the hot path).
 * @param {Buffer} out
 * @param {number} at
 * @param {number} tsUs send time in µs
 * @param {number} seq
 */
export function writePayload (out, at, tsUs, seq) {
  TEMPLATE.copy(out, at)
  let v = Math.floor(tsUs)
  for (let i = TS_AT + TS_DIGITS - 1; i >= TS_AT; i--) { out[at + i] = 48 + (v % 10); v = Math.floor(v / 10) }
  v = seq
  for (let i = SEQ_AT + SEQ_DIGITS - 1; i >= SEQ_AT; i--) { out[at + i] = 48 + (v % 10); v = Math.floor(v / 10) }
}

/** A fresh payload buffer. @param {number} tsUs @param {number} seq */
export function makePayload (tsUs, seq) {
  const b = Buffer.allocUnsafe(PAYLOAD_SIZE)
  writePayload(b, 0, tsUs, seq)
  return b
}

/** @param {Buffer} buf @param {number} at */
export function readTs (buf, at) {
  let v = 0
  for (let i = TS_AT; i < TS_AT + TS_DIGITS; i++) v = v * 10 + (buf[at + i] - 48)
  return v
}

/** @param {Buffer} buf @param {number} at */
export function readSeq (buf, at) {
  let v = 0
  for (let i = SEQ_AT; i < SEQ_AT + SEQ_DIGITS; i++) v = v * 10 + (buf[at + i] - 48)
  return v
}

/** True when `buf` holds a bench payload at `at`. @param {Buffer} buf @param {number} at */
export function isPayload (buf, at) {
  return at + PAYLOAD_SIZE <= buf.length && buf[at] === 0x42 && buf[at + TS_AT + TS_DIGITS] === 0x3a
}
