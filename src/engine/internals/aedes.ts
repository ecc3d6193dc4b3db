import type { Aedes, Client, PublishPacket } from 'aedes'

// What Aedes 1.2 keeps on its Client and broker objects and its typings do not show
// (lib/client.js, lib/handlers/connect.js, aedes.js). Every read and write of these goes
// through a function of this file; see the table in index.ts.

/** A subscription as Aedes keeps it in `client.subscriptions[filter]`. */
export interface HeldSubscription { qos: number }

/** A packet as Aedes hands it to a client's deliver functions. */
export interface Delivery { topic: string, qos: number, brokerId?: string | null, brokerCounter?: number }
type Deliver = (packet: Delivery, cb: () => void) => void

interface ClientInside {
  /** The will while authenticate() runs (connect.js sets it from CONNECT). */
  _will: PublishPacket | null
  /** The will once the client is connected (connect.js copies `_will`); the packet Aedes publishes. */
  will: PublishPacket | null
  /** Set only when the client sent DISCONNECT (handlers/index.js): the will is discarded. */
  _disconnected: boolean
  subscriptions: Record<string, HeldSubscription | undefined>
  /** brokerId -> the highest brokerCounter sent to this client (client.js, dedupe). */
  duplicates: Record<string, number | undefined>
  deliver0: Deliver
  deliverQoS: Deliver
  /** Set once the CONNACK is written (connect.js, doConnack's write callback). */
  connackSent: boolean
  /** The connection's mqtt-packet parser (client.js: `this._parser = mqtt.parser()`). */
  _parser: { parse (buf: Buffer): number }
}

/** The persistence calls we make on the broker's own persistence object. */
export interface BrokerPersistence {
  removeSubscriptions (client: Client, filters: string[]): Promise<unknown>
  delWill (client: { id: string, brokerId?: string | undefined }): Promise<unknown>
  createRetainedStream (pattern: string): AsyncIterable<unknown>
}

interface BrokerInside {
  /** Connected clients by id (aedes.js). */
  clients: Record<string, Client>
  persistence: BrokerPersistence
  /** brokerId -> the time its last heartbeat was heard (aedes.js, the will sweep). */
  brokers: Record<string, number>
}

const inside = (client: Client): ClientInside => client as unknown as ClientInside
const brokerInside = (broker: Aedes): BrokerInside => broker as unknown as BrokerInside

/** The will of a client while authenticate() runs (Aedes keeps it in `_will` until CONNACK). */
export function pendingWill (client: Client): PublishPacket | null { return inside(client)._will ?? null }

/** True when `packet` is the will object Aedes publishes for `client` (it passes that very object to authorizePublish). */
export function isClientWill (client: Client, packet: object): boolean { return packet === inside(client).will }

/** The topic of a connected client's will, if it has one. */
export function willTopic (client: Client): string | undefined { return inside(client).will?.topic }

/** True when the client ended with a DISCONNECT packet (and Aedes discarded its will). */
export function disconnectedCleanly (client: Client): boolean { return inside(client)._disconnected === true }

/** A client's subscriptions as Aedes holds them: filter -> granted QoS. */
export function clientSubscriptions (client: Client): Readonly<Record<string, Readonly<HeldSubscription> | undefined>> {
  return inside(client).subscriptions
}

/** Every client the broker holds as connected. */
export function brokerClients (broker: Aedes): Client[] { return Object.values(brokerInside(broker).clients) }

/** The persistence object the broker uses (the one given to createBroker, or its default). */
export function brokerPersistence (broker: Aedes): BrokerPersistence { return brokerInside(broker).persistence }

/**
 * Records a heartbeat of node `brokerId` heard at `at` (ms). Aedes publishes the wills of
 * a broker it has not heard from in three heartbeat intervals; it only hears its own
 * `$SYS/<id>/heartbeat` topic.
 */
export function markBrokerAlive (broker: Aedes, brokerId: string, at: number): void { brokerInside(broker).brokers[brokerId] = at }

/**
 * The highest QoS granted to the client's subscriptions that match `topic`, -1 when none
 * matches, or 'stock' to leave the delivery to Aedes untouched.
 */
export type GrantedQos = (topic: string) => number | 'stock'

const ROUTED = new WeakSet<Client>()

/**
 * Puts one function in front of both of the client's deliver functions, so each copy
 * goes out at min(published QoS, `granted(topic)`) (moscajs/aedes#1074). Aedes reads
 * `deliver0`/`deliverQoS` when a subscription is made, so this must run before the first
 * (preConnect). Idempotent.
 */
export function deliverAtQos (client: Client, granted: GrantedQos): void {
  if (ROUTED.has(client)) return
  ROUTED.add(client)
  const c = inside(client)
  const aedes0 = c.deliver0
  const aedesQoS = c.deliverQoS
  const route = (fallback: Deliver): Deliver => function deliverGranted (packet, cb) {
    const highest = granted(packet.topic)
    if (highest === 'stock') return fallback(packet, cb)
    // A copy already sent (another of the client's subscriptions got there first): Aedes's
    // deliver0 only drops it, while its deliverQoS would also clear the stored message id
    // of the copy that was sent, for a persistent session.
    if (isDuplicate(c, packet)) return aedes0(packet, cb)
    // No subscription matches (a queued message replayed after an unsubscribe): as Aedes would.
    if (highest < 0) return fallback(packet, cb)
    const qos = Math.min(packet.qos, highest)
    if (qos === 0) return aedes0(packet, cb)
    packet.qos = qos
    const exact = c.subscriptions[packet.topic]
    if (!exact || exact.qos >= qos) return aedesQoS(packet, cb)
    // Aedes reads the exact subscription's QoS in the setImmediate that builds the packet
    // (lib/client.js, deliverQoS) and lowers the copy to it. Immediates run in the order
    // they were queued: raise it in the one queued just before and restore it in the one
    // queued just after, so nothing else ever sees the raised value.
    const saved = exact.qos
    setImmediate(() => { exact.qos = qos })
    aedesQoS(packet, cb)
    setImmediate(() => { exact.qos = saved })
  }
  c.deliver0 = route(aedes0)
  c.deliverQoS = route(aedesQoS)
}

// Aedes's own test (lib/client.js, dedupe), without its side effect of recording the copy.
function isDuplicate (c: ClientInside, packet: Delivery): boolean {
  return !!packet.brokerId && (c.duplicates[packet.brokerId] ?? 0) >= (packet.brokerCounter ?? 0)
}

/**
 * Makes the client's parser finish one buffer before it starts the next.
 *
 * Aedes reads the connection again (nextBatch) as soon as a packet's handler is done, and
 * for a QoS 0 PUBLISH or a PINGREQ that is inside mqtt-packet's 'packet' event, so a second
 * buffer can reach `parse()` while the first is still being parsed. mqtt-packet's parser is
 * not re-entrant: the inner call runs the outer packet's last state again and the packets
 * of the second buffer are lost (seen on Node 26, where a read returns one chunk, and with
 * any stream whose `_read` pushes at once). A nested call now queues its buffer; the outer
 * call parses it when its own is done, in arrival order.
 */
export function parseOneBufferAtATime (client: Client): void {
  const parser = inside(client)._parser as InTurnParser
  parser[PARSE_BASE] = Object.prototype.hasOwnProperty.call(parser, 'parse') ? parser.parse : undefined
  parser.parse = parseInTurn
}

// Shared by every client, its state on the parser (no closure, bound copy or queue per
// idle connection): `parsing` while a parse runs, and the buffers that arrived meanwhile.
const PARSE_BASE = Symbol('fusion.parseBase')
const PARSING = Symbol('fusion.parsing')
const QUEUED = Symbol('fusion.parseQueue')
interface InTurnParser {
  parse: (buf: Buffer) => number
  [PARSE_BASE]?: ((buf: Buffer) => number) | undefined
  [PARSING]?: boolean
  [QUEUED]?: Buffer[] | undefined
}

function parseBase (parser: InTurnParser, buf: Buffer): number {
  const own = parser[PARSE_BASE]
  return own !== undefined ? own.call(parser, buf) : (Object.getPrototypeOf(parser) as InTurnParser).parse.call(parser, buf)
}

function parseInTurn (this: InTurnParser, buf: Buffer): number {
  if (this[PARSING] === true) { (this[QUEUED] ??= []).push(buf); return 0 }
  this[PARSING] = true
  try {
    let left = parseBase(this, buf)
    const queued = this[QUEUED]
    if (queued !== undefined) {
      for (let next = queued.shift(); next !== undefined; next = queued.shift()) left = parseBase(this, next)
    }
    return left
  } finally {
    this[PARSING] = false
  }
}

/**
 * True once Aedes has written the CONNACK. Until then it queues every packet it parses
 * after CONNECT and drops the connection past `queueLimit` ("Client queue limit reached").
 */
export function connackWritten (client: Client): boolean { return inside(client).connackSent === true }
