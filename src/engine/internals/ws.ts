import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'

// ws 8 keeps the TCP socket of a WebSocket in `_socket` (lib/websocket.js, setSocket), and
// createWebSocketStream (lib/stream.js) writes through its own `_write` only.

interface Corkable { cork (): void, uncork (): void, write (chunk: Buffer, cb: (err?: Error | null) => void): boolean }

/** The socket under a WebSocket, or null before the upgrade finished and after it closed. */
export function wsSocket (ws: WebSocket): Corkable | null {
  return (ws as unknown as { _socket?: Corkable | null })._socket ?? null
}

type WriteCallback = (err?: Error | null) => void

/**
 * The last frame built, with the chunks it was built from: the next stream that is handed
 * the very same chunks (the same Buffer objects, in the same order) writes the same
 * frame. A fan-out writes one encoded PUBLISH to every subscriber in one turn
 * (engine/fanout), so every MQTT/WS subscriber after the first reuses the first one's
 * frame, as the MQTT/TCP door writes one buffer to all: no copy and no allocation per
 * subscriber. Identity, not content, is compared: a writer never changes a Buffer it has
 * handed to a stream (a socket may still be sending it), so the same object means the
 * same bytes. One frame of at most REUSE_MAX bytes is held until a different one is built.
 */
let lastParts: readonly Buffer[] = []
let lastFrame: Buffer | undefined
const REUSE_MAX = 64 * 1024

function sameChunks (chunks: ReadonlyArray<{ chunk: unknown }>): boolean {
  if (lastFrame === undefined || chunks.length !== lastParts.length) return false
  for (let i = 0; i < chunks.length; i++) if (chunks[i]?.chunk !== lastParts[i]) return false
  return true
}

/** An unmasked binary frame (FIN set) holding `parts`, `size` bytes in all. */
function binaryFrame (parts: readonly Buffer[], size: number): Buffer {
  const head = size < 126 ? 2 : size < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(head + size)
  frame[0] = 0x82 // FIN, binary
  if (head === 2) {
    frame[1] = size
  } else if (head === 4) {
    frame[1] = 126
    frame.writeUInt16BE(size, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(size / 2 ** 32), 2)
    frame.writeUInt32BE(size >>> 0, 6)
  }
  let at = head
  for (const part of parts) at += part.copy(frame, at)
  return frame
}

/**
 * Makes a stream from ws's createWebSocketStream send everything written in one go
 * (while corked, or while the previous frame is being written) as one binary frame,
 * written to the socket in one call.
 *
 * The frame is what ws.send writes for an unmasked binary frame with compression off (a
 * server never masks; the caller must have turned compression off), without its
 * per-frame options object, header buffer and second socket write. Control frames (ping,
 * pong, close) stay with ws, which also writes each frame whole and at once, so frames
 * never interleave. The callback fires once the socket has taken the frame.
 */
export function sendWritesAsOneFrame (stream: Duplex, ws: WebSocket): void {
  const sendFrame = (chunks: ReadonlyArray<{ chunk: unknown }>, callback: WriteCallback): void => {
    const socket = wsSocket(ws)
    const open = ws.readyState === ws.OPEN && socket !== null
    // The hit is the hot path of a fan-out: compared in place, no copy and no new array.
    if (open && sameChunks(chunks)) { socket.write(lastFrame as Buffer, callback); return }
    const parts = chunks.map((c) => c.chunk as Buffer)
    let size = 0
    for (const part of parts) size += part.length
    if (!open) {
      // Closing or closed: ws.send reports that through the callback, as _write would.
      ws.send(Buffer.concat(parts, size), { binary: true }, callback)
      return
    }
    const frame = binaryFrame(parts, size)
    if (size <= REUSE_MAX) { lastParts = parts; lastFrame = frame } else { lastParts = []; lastFrame = undefined }
    socket.write(frame, callback)
  }
  const writable = stream as unknown as {
    _write: (chunk: Buffer, encoding: string, callback: WriteCallback) => void
    _writev: (chunks: Array<{ chunk: unknown }>, callback: WriteCallback) => void
  }
  writable._write = (chunk, _encoding, callback) => sendFrame([{ chunk }], callback)
  writable._writev = (chunks, callback) => sendFrame(chunks, callback)
}
