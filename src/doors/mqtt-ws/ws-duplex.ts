import type { Duplex } from 'node:stream'
import { createWebSocketStream, type WebSocket } from 'ws'
import { sendWritesAsOneFrame } from '../../engine/internals/index.js'

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

  // The frame of several chunks is built in one buffer and written to the socket in one
  // call (internals: ws-stream-frames); /mqtt never compresses.
  sendWritesAsOneFrame(stream, ws)
  return stream
}
