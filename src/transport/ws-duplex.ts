import { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'

/**
 * Aedes writes one MQTT packet in several small `write()` calls (mqtt-packet's
 * writeToStream: fixed header, topic, payload), corking the stream and uncorking on
 * the next tick. ws's createWebSocketStream implements only `_write`, so every small
 * write became a WebSocket frame of its own, and each waited for the previous
 * socket write: a 100-subscriber fan-out over MQTT/WS ran at a fifth of MQTT/TCP
 * with latencies in the hundreds of ms.
 *
 * This Duplex implements `_writev`: everything written while the stream is corked or
 * while the previous frame is still being written goes out as one binary frame (MQTT
 * over WebSocket lets a frame carry several packets, [MQTT-6.0.0-1]). The write
 * callback fires only once ws has handed the frame to the socket, so a slow reader
 * fills the stream's buffer, `write()` returns false past the high-water mark, and
 * Aedes waits for 'drain' as it does on TCP.
 *
 * Reading and closing behave as createWebSocketStream's.
 */
export function createCoalescingWsStream (ws: WebSocket, opts: { writableHighWaterMark?: number } = {}): Duplex {
  let terminateOnDestroy = true

  // ws.send reports an error through the callback once the socket is closing or closed,
  // as createWebSocketStream's _write does.
  const send = (data: Buffer, callback: (err?: Error | null) => void): void => {
    ws.send(data, { binary: true }, callback)
  }

  const duplex = new Duplex({
    // Room for a burst of packets to one subscriber before Aedes is told to wait.
    writableHighWaterMark: opts.writableHighWaterMark ?? 64 * 1024,
    autoDestroy: false,
    emitClose: false,
    objectMode: false,
    writableObjectMode: false,
    read () {
      if (ws.isPaused) ws.resume()
    },
    write (chunk: Buffer, _encoding, callback) {
      send(chunk, callback)
    },
    writev (chunks, callback) {
      if (chunks.length === 1) {
        send((chunks[0] as { chunk: Buffer }).chunk, callback)
        return
      }
      let size = 0
      for (const c of chunks) size += (c.chunk as Buffer).length
      const frame = Buffer.allocUnsafe(size)
      let at = 0
      for (const c of chunks) at += (c.chunk as Buffer).copy(frame, at)
      send(frame, callback)
    },
    final (callback) {
      const socket = (ws as unknown as { _socket: (NodeJS.WritableStream & { _writableState: { finished: boolean } }) | null })._socket
      // A server-side socket exists from the start; null only for a failed client handshake.
      if (socket === null) return
      if (socket._writableState.finished) {
        callback()
        if (duplex.readableEnded) duplex.destroy()
        return
      }
      socket.once('finish', () => callback())
      ws.close()
    },
    destroy (err, callback) {
      if (ws.readyState === ws.CLOSED) {
        callback(err)
        process.nextTick(() => duplex.emit('close'))
        return
      }
      let called = false
      ws.once('error', (e: Error) => { called = true; callback(e) })
      ws.once('close', () => {
        if (!called) callback(err)
        process.nextTick(() => duplex.emit('close'))
      })
      if (terminateOnDestroy) ws.terminate()
    }
  })

  ws.on('message', (msg: Buffer) => {
    // MQTT is binary; a text frame's bytes are passed on as they are.
    if (!duplex.push(msg)) ws.pause()
  })
  ws.once('error', (err: Error) => {
    if (duplex.destroyed) return
    // ws closes the connection itself after an error (sending a close frame first).
    terminateOnDestroy = false
    duplex.destroy(err)
  })
  ws.once('close', () => {
    if (duplex.destroyed) return
    duplex.push(null)
  })
  duplex.on('end', () => {
    if (!duplex.destroyed && duplex.writableFinished) duplex.destroy()
  })
  // As createWebSocketStream: an error ends the stream (destroy is idempotent).
  duplex.on('error', () => duplex.destroy())
  return duplex
}
