import type { WebSocket } from 'ws'

interface Corkable { cork (): void, uncork (): void }

const CORKED = Symbol('fusion.corked')

interface Flagged { [CORKED]?: boolean, _socket?: Corkable | null }

function uncork (ws: Flagged, socket: Corkable): void {
  ws[CORKED] = false
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
  const w = ws as unknown as Flagged
  if (w[CORKED]) return
  const socket = w._socket
  if (!socket) return
  w[CORKED] = true
  socket.cork()
  process.nextTick(uncork, w, socket)
}
