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
    let size = 0
    for (const c of chunks) size += (c.chunk as Buffer).length
    if (ws.readyState !== ws.OPEN || !socket) {
      // Closing or closed: ws.send reports that through the callback, as _write would.
      ws.send(Buffer.concat(chunks.map((c) => c.chunk as Buffer), size), { binary: true }, callback)
      return
    }
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
    for (const c of chunks) at += (c.chunk as Buffer).copy(frame, at)
    socket.write(frame, callback)
  }
  const writable = stream as unknown as {
    _write: (chunk: Buffer, encoding: string, callback: WriteCallback) => void
    _writev: (chunks: Array<{ chunk: unknown }>, callback: WriteCallback) => void
  }
  writable._write = (chunk, _encoding, callback) => sendFrame([{ chunk }], callback)
  writable._writev = (chunks, callback) => sendFrame(chunks, callback)
}
