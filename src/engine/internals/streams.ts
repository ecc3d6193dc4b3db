import type { Duplex } from 'node:stream'

// Aedes 1.2 pulls a connection's bytes with `conn.read(null)` on 'readable' (lib/client.js,
// nextBatch) and mqtt-packet pushes a packet with `stream.write()` (writeToStream), so one
// method of the stream it was handed is each direction's only way. A wrapper there sees
// every byte with no extra stream and no copy.

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
  const read = stream.read.bind(stream)
  stream.read = function wholeBufferRead (size?: number | null) {
    const first = read(size ?? undefined) as Buffer | string | null
    if ((size !== undefined && size !== null) || first === null || typeof first === 'string' || stream.readableLength === 0) return first
    const chunks: Buffer[] = [first]
    let total = first.length
    while (stream.readableLength > 0) {
      const next = read() as Buffer | string | null
      if (next === null || typeof next === 'string') break
      chunks.push(next)
      total += next.length
    }
    return chunks.length === 1 ? first : Buffer.concat(chunks, total)
  }
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
  const read = stream.read.bind(stream)
  stream.read = function gatedRead (size?: number | null) {
    if (!gate.open()) return null
    const chunk = read(size ?? undefined) as Buffer | string | null
    if (chunk === null || typeof chunk === 'string') return chunk
    const n = gate.take(chunk)
    if (n < 0) {
      stream.destroy()
      return null
    }
    if (n >= chunk.length) return chunk
    stream.unshift(chunk.subarray(n))
    return n === 0 ? null : chunk.subarray(0, n)
  }
}

/**
 * Decides, after each write Aedes makes to `stream`, what the write returns: `after`
 * returns true for "go on" and false for "wait for drain" (Aedes then waits up to its
 * drainTimeout, or until the stream closes).
 */
export function afterEachWrite (stream: Duplex, after: () => boolean): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean
  stream.write = function checkedWrite (...args: unknown[]): boolean {
    write(...args)
    return after()
  } as Duplex['write']
}
