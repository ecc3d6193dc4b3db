import { createServer, type Server, type Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes } from 'aedes'
import { tagClientDoor } from '../broker/create-broker.js'
import type { Door } from '../policy/acl.js'
import type { Stats } from '../stats.js'
import type { ByteMeter } from './byte-meter.js'
import { guardMqttStream } from './mqtt-guard.js'

export interface MqttDoorDeps {
  readonly broker: Aedes
  readonly maxPacket: number
  readonly stats: Stats
  readonly meter: ByteMeter
  readonly log: (level: 'info' | 'warn' | 'error', msg: string) => void
}

/** Hands a byte stream to Aedes behind the packet-size guard, counted under `door`. */
export function handleMqttStream (deps: MqttDoorDeps, stream: Duplex, door: Door, req?: IncomingMessage): void {
  const { stats } = deps
  guardMqttStream(stream, deps.maxPacket, () => { stats.dropped.tooLarge++ })
  stats.opened(door)
  stream.once('close', () => stats.closed(door))
  const client = deps.broker.handle(stream, req)
  tagClientDoor(client, door)
}

/** The MQTT/TCP door. */
export function createMqttTcpServer (deps: MqttDoorDeps): Server {
  return createServer((socket: Socket) => {
    socket.setNoDelay(true)
    deps.meter.track(socket, 'mqtt')
    handleMqttStream(deps, socket, 'mqtt')
  })
}
