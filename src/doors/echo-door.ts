import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import { WS_CLOSE } from '../core/errors.js'
import type { Stats } from '../core/stats.js'
import type { RateGateFactory } from '../core/types.js'

export interface EchoDoorDeps {
  /**
   * Largest message echoed, in bytes (the gateway passes `--max-payload`). A bigger one
   * is refused by ws with 1009 before it is buffered whole.
   */
  readonly maxPayload: number
  /**
   * Bytes queued to one client past which it is dropped with 1013: a client that sends
   * and never reads would otherwise make us hold every echo.
   */
  readonly sendHighWaterMark: number
  /** One message-rate gate per connection, as on the other doors; undefined: no limit. */
  readonly rateGate?: RateGateFactory | undefined
  readonly stats?: Stats | undefined
}

/**
 * The echo door at /echo: every text and binary message comes back unchanged, to the
 * sender only, so a client can check its WebSocket stack, a proxy or a TLS setup against
 * the gateway without touching the topic space (nothing is published, nothing is
 * stored). Origin, auth and the connection limits are the upgrade router's; the
 * payload limit and the message rate are the same as the other doors'.
 */
export function createEchoServer (deps: EchoDoorDeps): WebSocketServer {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: deps.maxPayload,
    perMessageDeflate: false,
    clientTracking: true
  })
  wss.on('connection', (ws: WebSocket) => {
    const gate = deps.rateGate?.()
    ws.on('message', (data: RawData, isBinary: boolean) => {
      // Frames already on the wire when we started closing are neither echoed nor counted.
      if (ws.readyState !== ws.OPEN) return
      const verdict = gate?.take() ?? 'ok'
      if (verdict !== 'ok') {
        if (deps.stats) deps.stats.dropped.rateLimited++
        // As on /ws: over the rate a message is dropped (not echoed); a client that
        // keeps going is closed with 1008.
        if (verdict === 'cut') ws.close(WS_CLOSE.POLICY, 'RATE_LIMITED')
        return
      }
      if (ws.bufferedAmount > deps.sendHighWaterMark) {
        if (deps.stats) deps.stats.dropped.slowConsumer++
        ws.close(WS_CLOSE.TRY_AGAIN_LATER, 'reading too slowly')
        // A reader that stopped reading will not read our close frame either.
        setTimeout(() => ws.terminate(), 1000).unref()
        return
      }
      ws.send(data as Buffer, { binary: isBinary })
    })
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already sent the close code (1009 for an over-limit message).
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' && deps.stats) deps.stats.dropped.tooLarge++
    })
  })
  return wss
}

/** Closes every echo client with 1001 and the server; safe to call twice. */
export async function closeEchoServer (wss: WebSocketServer): Promise<void> {
  for (const ws of wss.clients) {
    try { ws.close(WS_CLOSE.GOING_AWAY, 'server shutting down') } catch {}
    ws.terminate()
  }
  await new Promise<void>((resolve) => wss.close(() => resolve()))
}
