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

/** What every connection of one set of deps shares: made once, not per connection. */
interface Shared {
  readonly tooLarge: () => void
  readonly sendLimit: SendQueueLimit | undefined
  readonly stats: Stats
  /** What a stream's close must uncount, one per door. */
  readonly tags: Map<Door, { readonly stats: Stats, readonly door: Door }>
}
const sharedByDeps = new WeakMap<MqttDoorDeps, Shared>()
function sharedOf (deps: MqttDoorDeps): Shared {
  let shared = sharedByDeps.get(deps)
  if (shared === undefined) {
    const { stats } = deps
    shared = {
      tooLarge: () => { stats.dropped.tooLarge++ },
      sendLimit: deps.sendHighWaterMark ? new SendQueueLimit(deps.sendHighWaterMark, () => { stats.dropped.slowConsumer++ }) : undefined,
      stats,
      tags: new Map()
    }
    sharedByDeps.set(deps, shared)
  }
  return shared
}

const COUNTED = Symbol('fusion.countedAs')
type Counted = Duplex & { [COUNTED]?: { readonly stats: Stats, readonly door: Door } }

// One listener shared by every stream (no closure per connection).
function countClosed (this: Counted): void {
  const c = this[COUNTED]
  if (c !== undefined) c.stats.closed(c.door)
}

/** Hands a byte stream to Aedes behind the packet-size guard, counted under `door`. */
export function handleMqttStream (deps: MqttDoorDeps, stream: Duplex, door: Door, req?: IncomingMessage): void {
  const shared = sharedOf(deps)
  const guard = guardMqttStream(stream, deps.maxPacket, shared.tooLarge)
  shared.sendLimit?.apply(stream)
  shared.stats.opened(door)
  let tag = shared.tags.get(door)
  if (tag === undefined) shared.tags.set(door, tag = { stats: shared.stats, door })
  ;(stream as Counted)[COUNTED] = tag
  stream.on('close', countClosed)
  const client = deps.broker.handle(stream, req)
  guard.client = client
  parseOneBufferAtATime(client)
  tagClientDoor(client, door)
}

/** The MQTT/TCP door. */
export function createMqttTcpServer (deps: MqttDoorDeps): Server {
  const accept = (socket: Socket): void => {
    if (deps.admit && !deps.admit(socket)) return
    socket.setNoDelay(true)
    deps.meter.track(socket, 'mqtt')
    handleMqttStream(deps, socket, 'mqtt')
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
  const server = createTlsServer({ cert: tls.cert, key: tls.key, handshakeTimeout: 10_000 }, (socket: TLSSocket) => {
    socket.setNoDelay(true)
    deps.meter.track(socket, 'mqtt')
    handleMqttStream(deps, socket, 'mqtt')
  })
  if (deps.admit) server.on('connection', (raw: Socket) => { deps.admit?.(raw) })
  server.on('tlsClientError', () => { deps.stats.dropped.badInput++ })
  return server
}
