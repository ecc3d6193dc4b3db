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
 * callback fires only once the socket has flushed the frame, so a slow reader fills
 * the stream's buffer, `write()` returns false past the high-water mark, and Aedes
 * waits for 'drain' as it does on TCP.
 *
 * Reading and closing behave as createWebSocketStream's; control frames (ping, pong,
 * close) stay with ws, and data frames stop once ws leaves the OPEN state.
 */
export function createCoalescingWsStream (ws: WebSocket, opts: { writableHighWaterMark?: number } = {}): Duplex {
  let terminateOnDestroy = true

  // ws.send reports an error through the callback once the socket is closing or closed,
  // as createWebSocketStream's _write does.
  const send = (data: Buffer, callback: (err?: Error | null) => void): void => {
    ws.send(data, { binary: true }, callback)
  }

  // The frame of several chunks is built in one buffer, header included, and written to
  // the socket in one call: what ws.send would write for an unmasked binary frame with
  // compression off (this server never masks or compresses), without its per-frame
  // options object, header buffer and second socket write.
  const sendFrame = (chunks: Array<{ chunk: unknown }>, callback: (err?: Error | null) => void): void => {
    const socket = (ws as unknown as { _socket?: NodeJS.WritableStream | null })._socket
    let size = 0
    for (const c of chunks) size += (c.chunk as Buffer).length
    if (ws.readyState !== ws.OPEN || !socket) {
      send(Buffer.concat(chunks.map((c) => c.chunk as Buffer), size), callback)
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
      sendFrame([{ chunk }], callback)
    },
    writev (chunks, callback) {
      sendFrame(chunks, callback)
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
