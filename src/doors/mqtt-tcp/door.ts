import type { Server, Socket } from 'node:net'
import { withDeadline } from '../../core/lifecycle.js'
import { displayHost, listenOn, type Door } from '../door.js'
import { createMqttTcpServer, createMqttTlsServer, type MqttDoorDeps } from './mqtt-tcp.js'

const HELD_IN = Symbol('fusion.heldIn')
type Held = Socket & { [HELD_IN]?: Set<Socket> }
// One listener for every socket of every door (no closure per connection).
function forget (this: Held): void { this[HELD_IN]?.delete(this) }

export interface MqttTcpDoorInit {
  readonly port: number
  readonly host: string
  /** Certificate and key for the MQTT/TLS door (mqtts); undefined for plain MQTT/TCP. */
  readonly tls?: { readonly cert: Buffer, readonly key: Buffer } | undefined
  readonly closeTimeoutMs: number
}

/**
 * MQTT over TCP (or TLS) as a Door. Its stop closes the listener and drops the sockets it
 * accepted (Aedes then runs each client's close: wills, presence), so the listener's
 * close never waits on a client that does not hang up.
 */
export function createMqttTcpDoor (deps: MqttDoorDeps, init: MqttTcpDoorInit): Door {
  const server: Server = init.tls ? createMqttTlsServer(deps, init.tls) : createMqttTcpServer(deps)
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    ;(socket as Held)[HELD_IN] = sockets
    socket.on('close', forget)
  })
  let listening = false
  const key = init.tls ? 'mqtts' : 'mqtt'
  return {
    name: init.tls ? 'mqtt-tls' : 'mqtt-tcp',
    async start () {
      const port = await listenOn(server, init.port, init.host, init.tls ? 'mqtts-port' : 'mqtt-port')
      listening = true
      return { [key]: `${key}://${displayHost(init.host)}:${port}` }
    },
    async stop () {
      if (!listening) return
      listening = false
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of sockets) s.destroy()
      await withDeadline(closed, init.closeTimeoutMs)
    }
  }
}
