import type { Duplex } from 'node:stream'

// Aedes 1.2 pulls a connection's bytes with `conn.read(null)` on 'readable' (lib/client.js,
// nextBatch) and mqtt-packet pushes a packet with `stream.write()` (writeToStream), so one
// method of the stream it was handed is each direction's only way. A wrapper there sees
// every byte with no extra stream and no copy.

/**
 * Lets `inspect` see each chunk Aedes reads from `stream`; when it returns false the
 * stream is destroyed and Aedes reads nothing more.
 */
export function inspectReads (stream: Duplex, inspect: (chunk: Buffer) => boolean): void {
  const read = stream.read.bind(stream)
  stream.read = function inspectedRead (size?: number) {
    const chunk = read(size) as Buffer | string | null
    if (chunk !== null && typeof chunk !== 'string' && !inspect(chunk)) {
      stream.destroy()
      return null
    }
    return chunk
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
