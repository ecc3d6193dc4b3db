import type { Duplex } from 'node:stream'
import { createWebSocketStream, type WebSocket } from 'ws'

/**
 * ws 8's createWebSocketStream for MQTT over WebSocket, with the writes of one tick
 * sent as one frame.
 *
 * Aedes writes one MQTT packet in several small `write()` calls (mqtt-packet's
 * writeToStream: fixed header, topic, payload). createWebSocketStream implements only
 * `_write`, so every small write became a WebSocket frame of its own, each waiting for
 * the previous socket write: a 100-subscriber fan-out over MQTT/WS ran at a fifth of
 * MQTT/TCP with latencies in the hundreds of ms.
 *
 * Reading, closing and errors stay createWebSocketStream's. Writing gets a `_writev`:
 * everything written while the stream is corked, or while the previous frame is still
 * being written, goes out as one binary frame (a frame may carry several packets,
 * [MQTT-6.0.0-1]). The write callback fires once the socket has taken the frame, so a
 * slow reader fills the stream's buffer, `write()` returns false past the high-water
 * mark and Aedes waits for 'drain' as it does on TCP.
 */
export function createCoalescingWsStream (ws: WebSocket, opts: { writableHighWaterMark?: number } = {}): Duplex {
  // Room for a burst of packets to one subscriber before Aedes is told to wait.
  const stream = createWebSocketStream(ws, { writableHighWaterMark: opts.writableHighWaterMark ?? 64 * 1024 })

  // The frame of several chunks is built in one buffer, header included, and written to
  // the socket in one call: what ws.send writes for an unmasked binary frame with
  // compression off (a server never masks, and /mqtt never compresses), without its
  // per-frame options object, header buffer and second socket write. Control frames
  // (ping, pong, close) stay with ws, which also writes each frame whole and at once.
  const sendFrame = (chunks: ReadonlyArray<{ chunk: unknown }>, callback: (err?: Error | null) => void): void => {
    const socket = (ws as unknown as { _socket?: NodeJS.WritableStream | null })._socket
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
    _write: (chunk: Buffer, encoding: string, callback: (err?: Error | null) => void) => void
    _writev: (chunks: Array<{ chunk: unknown }>, callback: (err?: Error | null) => void) => void
  }
  writable._write = (chunk, _encoding, callback) => sendFrame([{ chunk }], callback)
  writable._writev = (chunks, callback) => sendFrame(chunks, callback)
  return stream
}
