import type { IncomingMessage } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
import { createMqttHandler, type MqttDoorDeps } from '../mqtt-tcp/mqtt-tcp.js'
import { createCoalescingWsStream } from './ws-duplex.js'

/**
 * MQTT over WebSocket at /mqtt. ws 8's createWebSocketStream bridges the socket to a
 * Node stream for Aedes (websocket-stream, the usual choice, pins ws 3, which has
 * published DoS advisories), with the packets of one tick sent as one frame (see
 * ws-duplex.ts).
 */
export function createMqttWsServer (deps: MqttDoorDeps): WebSocketServer {
  const wss = new WebSocketServer({
    noServer: true,
    // One MQTT packet may span frames, so a frame never needs to exceed the packet limit.
    maxPayload: deps.maxPacket + 8,
    perMessageDeflate: false,
    clientTracking: true,
    // MQTT.js offers `mqtt` (3.1.1) or `mqttv3.1`; answer with what was offered.
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false)
  })
  const handle = createMqttHandler(deps)
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const stream = createCoalescingWsStream(ws)
    handle(stream, 'mqtt-ws', req)
  })
  return wss
}
