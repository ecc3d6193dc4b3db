import type { Duplex } from 'node:stream'

// Aedes 1.2 pulls a connection's bytes with `conn.read(null)` on 'readable' (lib/client.js,
// nextBatch) and mqtt-packet pushes a packet with `stream.write()` (writeToStream), so one
// method of the stream it was handed is each direction's only way. A wrapper there sees
// every byte with no extra stream and no copy.

// Each wrapper below is one function shared by every connection, installed as the
// stream's own `read` or `write`, with what it needs kept on the stream under a symbol:
// a closure and a bound copy of the original per connection cost about 250 bytes each,
// and 10,000 idle MQTT clients carry them all (bench: bytes per idle MQTT socket).
type ReadFn = (size?: number) => unknown
type WriteFn = (...args: unknown[]) => boolean
const WHOLE_BASE = Symbol('fusion.readWholeBase')
const GATE = Symbol('fusion.readGate')
const GATED_BASE = Symbol('fusion.gatedReadBase')
const AFTER = Symbol('fusion.afterWrite')
const WRITE_BASE = Symbol('fusion.writeBase')
interface Hooked {
  [WHOLE_BASE]?: ReadFn | undefined
  [GATE]?: ReadGate
  [GATED_BASE]?: ReadFn | undefined
  [AFTER]?: AfterWrite
  [WRITE_BASE]?: WriteFn | undefined
}
type HookedStream = Duplex & Hooked

/**
 * What `wrapper` wraps is kept under `slot` only when it is the stream's own (a wrapper
 * installed before): the class's own is looked up per call, so a plain socket carries no
 * property for it.
 */
function wrapOwn (stream: Duplex, key: 'read', slot: typeof WHOLE_BASE | typeof GATED_BASE, wrapper: ReadFn): void
function wrapOwn (stream: Duplex, key: 'write', slot: typeof WRITE_BASE, wrapper: WriteFn): void
function wrapOwn (stream: Duplex, key: 'read' | 'write', slot: typeof WHOLE_BASE | typeof GATED_BASE | typeof WRITE_BASE, wrapper: ReadFn | WriteFn): void {
  // One loose view here keeps the three installers free of casts; the overloads pair each
  // method with its slot and wrapper.
  const s = stream as unknown as Record<typeof key | typeof slot, ReadFn | WriteFn | undefined>
  const own = Object.prototype.hasOwnProperty.call(stream, key) ? s[key] : undefined
  if (own !== undefined) s[slot] = own
  s[key] = wrapper
}

function baseRead (stream: HookedStream, own: ReadFn | undefined, size: number | undefined): unknown {
  return own !== undefined ? own.call(stream, size) : (Object.getPrototypeOf(stream) as Duplex).read.call(stream, size)
}

/**
 * Makes `stream.read()` (no size) return everything buffered, as one Buffer, on every
 * Node line. Node 26 returns only the first buffered chunk; Aedes's nextBatch then reads
 * again from inside the parser's 'packet' event when a packet completes at once (a QoS 0
 * PUBLISH, a PINGREQ), and mqtt-packet's parser, entered twice, loses the second chunk:
 * over MQTT/WS (a chunk per WebSocket message) the CONNECT never got its CONNACK. With
 * the whole buffer in one read, the nested read finds nothing, as on Node 20 to 24.
 * Call it before any other wrapper of `read`.
 */
export function readWholeBuffer (stream: Duplex): void {
  wrapOwn(stream, 'read', WHOLE_BASE, wholeBufferRead)
}

function wholeBufferRead (this: HookedStream, size?: number | null): any {
  const own = this[WHOLE_BASE]
  const first = baseRead(this, own, size ?? undefined) as Buffer | string | null
  if ((size !== undefined && size !== null) || first === null || typeof first === 'string' || this.readableLength === 0) return first
  const chunks: Buffer[] = [first]
  let total = first.length
  while (this.readableLength > 0) {
    const next = baseRead(this, own, undefined) as Buffer | string | null
    if (next === null || typeof next === 'string') break
    chunks.push(next)
    total += next.length
  }
  return chunks.length === 1 ? first : Buffer.concat(chunks, total)
}

/** What Aedes may read from a connection, decided read by read. */
export interface ReadGate {
  /** False: read() returns null and the bytes stay in the stream (the socket is paused by its own back-pressure). */
  open (): boolean
  /** How many bytes of `chunk` Aedes gets now (the rest goes back to the stream); -1 destroys the stream. */
  take (chunk: Buffer): number
}

/** Puts `gate` between Aedes and `stream`: every read passes it. */
export function gateReads (stream: Duplex, gate: ReadGate): void {
  ;(stream as HookedStream)[GATE] = gate
  wrapOwn(stream, 'read', GATED_BASE, gatedRead)
}

function gatedRead (this: HookedStream, size?: number | null): any {
  const gate = this[GATE] as ReadGate
  if (!gate.open()) return null
  const chunk = baseRead(this, this[GATED_BASE], size ?? undefined) as Buffer | string | null
  if (chunk === null || typeof chunk === 'string') return chunk
  const n = gate.take(chunk)
  if (n < 0) {
    this.destroy()
    return null
  }
  if (n >= chunk.length) return chunk
  this.unshift(chunk.subarray(n))
  return n === 0 ? null : chunk.subarray(0, n)
}

/** Called after each write to a stream; see afterEachWrite. */
export interface AfterWrite {
  /** True for "go on", false for "wait for drain". */
  afterWrite (stream: Duplex): boolean
}

/**
 * Decides, after each write Aedes makes to `stream`, what the write returns: `after`
 * returns true for "go on" and false for "wait for drain" (Aedes then waits up to its
 * drainTimeout, or until the stream closes).
 */
export function afterEachWrite (stream: Duplex, after: AfterWrite): void {
  ;(stream as HookedStream)[AFTER] = after
  wrapOwn(stream, 'write', WRITE_BASE, checkedWrite)
}

// write(chunk, encoding?, callback?): passed on as three arguments, which Writable reads
// as it reads fewer (no rest array per write: this is the fan-out's hot path).
function checkedWrite (this: HookedStream, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  const own = this[WRITE_BASE]
  if (own !== undefined) own.call(this, chunk, encoding, cb)
  else (Object.getPrototypeOf(this) as { write: WriteFn }).write.call(this, chunk, encoding, cb)
  return (this[AFTER] as AfterWrite).afterWrite(this)
}
