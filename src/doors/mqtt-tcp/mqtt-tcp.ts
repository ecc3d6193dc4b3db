import type { LogFn } from '../../core/types.js'
import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes } from 'aedes'
import { tagClientDoor } from '../../engine/create-broker.js'
import { parseOneBufferAtATime } from '../../engine/internals/index.js'
import type { Door } from '../../core/policy/acl.js'
import type { Stats } from '../../core/stats.js'
import type { ByteMeter } from '../byte-meter.js'
import { guardMqttStream } from './mqtt-guard.js'
import { SendQueueLimit } from './send-queue.js'
import { readProxyHeader } from '../../core/policy/proxy-protocol.js'
import { setClientAddress, type TrustedProxies } from '../../core/policy/trust-proxy.js'

export interface MqttDoorDeps {
  readonly broker: Aedes
  readonly maxPacket: number
  readonly stats: Stats
  readonly meter: ByteMeter
  readonly log: LogFn
  /** Counts a raw socket against the connection limits; false when it was refused (and destroyed). */
  readonly admit?: (socket: Socket) => boolean
  /** Bytes a client may have queued unsent before it is cut (a reader that stopped reading). */
  readonly sendHighWaterMark?: number
  /** `--trust-proxy`: a connection from one of these starts with a PROXY protocol header. */
  readonly trustProxy?: TrustedProxies | undefined
}

const COUNTED = Symbol('fusion.countedAs')
type Counted = Duplex & { [COUNTED]?: { readonly stats: Stats, readonly door: Door } }

// One listener shared by every stream (no closure per connection).
function countClosed (this: Counted): void {
  const c = this[COUNTED]
  if (c !== undefined) c.stats.closed(c.door)
}

/** Hands a byte stream to Aedes behind the packet-size guard, counted under `door`. */
export type MqttHandler = (stream: Duplex, door: Door, req?: IncomingMessage) => void

/**
 * Call it once per door, not per connection: the counters, the send limit and the close
 * tags it builds are shared by every connection, so an idle client carries none of its own.
 */
export function createMqttHandler (deps: MqttDoorDeps): MqttHandler {
  const { broker, maxPacket, stats } = deps
  const tooLarge = (): void => { stats.dropped.tooLarge++ }
  const sendLimit = deps.sendHighWaterMark ? new SendQueueLimit(deps.sendHighWaterMark, () => { stats.dropped.slowConsumer++ }) : undefined
  // What a stream's close must uncount, one per door.
  const tags = new Map<Door, { readonly stats: Stats, readonly door: Door }>()
  return (stream, door, req) => {
    const guard = guardMqttStream(stream, maxPacket, tooLarge)
    sendLimit?.apply(stream)
    stats.opened(door)
    let tag = tags.get(door)
    if (tag === undefined) tags.set(door, tag = { stats, door })
    ;(stream as Counted)[COUNTED] = tag
    stream.on('close', countClosed)
    const client = broker.handle(stream, req)
    guard.client = client
    parseOneBufferAtATime(client)
    tagClientDoor(client, door)
  }
}

/** The MQTT/TCP door. */
export function createMqttTcpServer (deps: MqttDoorDeps): Server {
  const handle = createMqttHandler(deps)
  const accept = (socket: Socket): void => {
    if (deps.admit && !deps.admit(socket)) return
    socket.setNoDelay(true)
    deps.meter.track(socket, 'mqtt')
    handle(socket, 'mqtt')
  }
  return createServer((socket: Socket) => {
    if (!deps.trustProxy?.trusts(socket.remoteAddress)) { accept(socket); return }
    // A trusted proxy names the client first (PROXY protocol v1 or v2); the limits then
    // count that client, not the proxy.
    socket.on('error', () => socket.destroy())
    readProxyHeader(socket, (address) => {
      if (address !== undefined) setClientAddress(socket, address)
      accept(socket)
    })
  })
}

/**
 * The MQTT/TLS door (mqtts). Connection limits apply to the raw socket, before the
 * handshake, so a flood of connects costs no TLS work; a handshake must finish within
 * 10 s (Node's default is 120 s) so half-open handshakes cannot hold slots.
 */
export function createMqttTlsServer (deps: MqttDoorDeps, tls: { cert: Buffer, key: Buffer }): Server {
  const handle = createMqttHandler(deps)
  const server = createTlsServer({ cert: tls.cert, key: tls.key, handshakeTimeout: 10_000 }, (socket: TLSSocket) => {
    socket.setNoDelay(true)
    deps.meter.track(socket, 'mqtt')
    handle(socket, 'mqtt')
  })
  if (deps.admit) server.on('connection', (raw: Socket) => { deps.admit?.(raw) })
  server.on('tlsClientError', () => { deps.stats.dropped.badInput++ })
  return server
}
