// @ts-check
/**
 * Baseline: Aedes alone, the same version and broker options as the gateway
 * (src/engine/create-broker.ts), in-memory persistence (the gateway runs --memory in
 * the bench), no hooks. MQTT/TCP on a net server; MQTT/WS through ws 8's
 * createWebSocketStream exactly as Aedes's docs wire it, with no write coalescing:
 * what you get from the parts before the gateway adds anything.
 *
 *   node bench/baselines/aedes-standalone.mjs [--host 127.0.0.1]
 * prints `aedes-standalone ready mqtt=mqtt://... mqtt-ws=ws://.../mqtt`.
 */
import net from 'node:net'
import http from 'node:http'
import { once } from 'node:events'
import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'

const host = process.argv.includes('--host') ? String(process.argv[process.argv.indexOf('--host') + 1]) : '127.0.0.1'

const broker = await Aedes.createBroker({
  // Same as the gateway's createBroker():
  drainTimeout: 10_000,
  keepaliveLimit: 3600,
  maxTopicLevels: 32
})

const tcp = net.createServer((socket) => {
  socket.setNoDelay(true) // as the gateway's MQTT/TCP door
  broker.handle(socket)
})
const server = http.createServer((_req, res) => { res.statusCode = 404; res.end() })
const wss = new WebSocketServer({
  server,
  path: '/mqtt',
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false)
})
wss.on('connection', (ws, req) => {
  const stream = createWebSocketStream(ws)
  stream.on('error', () => stream.destroy())
  broker.handle(stream, req)
})

tcp.listen(0, host)
server.listen(0, host)
await Promise.all([once(tcp, 'listening'), once(server, 'listening')])
const tcpPort = /** @type {net.AddressInfo} */ (tcp.address()).port
const wsPort = /** @type {net.AddressInfo} */ (server.address()).port
process.stdout.write(`aedes-standalone ready mqtt=mqtt://${host}:${tcpPort} mqtt-ws=ws://${host}:${wsPort}/mqtt\n`)

const stop = () => {
  for (const ws of wss.clients) ws.terminate()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
