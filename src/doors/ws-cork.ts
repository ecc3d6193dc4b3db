import type { WebSocket } from 'ws'
import { wsSocket } from '../engine/internals/index.js'

interface Corkable { cork (): void, uncork (): void }

// WebSockets whose socket is corked until the end of this tick.
const corked = new WeakSet<WebSocket>()

function uncork (ws: WebSocket, socket: Corkable): void {
  corked.delete(ws)
  socket.uncork()
}

/**
 * Holds a WebSocket's socket writes until the end of the current tick. ws writes each
 * frame with a cork/uncork pair of its own, so every `send()` is one `writev` system
 * call; a fan-out that sends several messages to one client in one tick (a burst the
 * broker routes in one go) then pays one call per message per client, which is most
 * of the hub's CPU. Corked, the frames of one tick leave in one call, as Aedes already
 * does for MQTT clients (mqtt-packet corks until the next tick). Frames and their order
 * are unchanged; `bufferedAmount` still counts what waits.
 */
export function corkUntilNextTick (ws: WebSocket): void {
  if (corked.has(ws)) return
  const socket = wsSocket(ws)
  if (!socket) return
  corked.add(ws)
  socket.cork()
  process.nextTick(uncork, ws, socket)
}
