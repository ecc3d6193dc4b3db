import type { WebSocket, WebSocketServer } from 'ws'

const ALIVE = Symbol('fusion.alive')
type Tracked = WebSocket & { [ALIVE]?: boolean }

/**
 * Pings every socket of `wss` each `intervalMs` and terminates one that did not answer
 * the previous ping, so a peer that vanished (power cut, NAT timeout) stops holding a
 * connection slot within two intervals. The hub has its own beat; this one is for the
 * MQTT/WS door, whose MQTT keepalive may be an hour long. Returns a stop function.
 */
export function startHeartbeat (wss: WebSocketServer, intervalMs: number): () => void {
  const onConnection = (ws: Tracked): void => {
    ws[ALIVE] = true
    ws.on('pong', () => { ws[ALIVE] = true })
  }
  wss.on('connection', onConnection)
  const timer = setInterval(() => {
    for (const ws of wss.clients as Set<Tracked>) {
      if (ws[ALIVE] === false) { ws.terminate(); continue }
      ws[ALIVE] = false
      try { ws.ping() } catch {}
    }
  }, intervalMs)
  timer.unref()
  return () => {
    clearInterval(timer)
    wss.off('connection', onConnection)
  }
}
