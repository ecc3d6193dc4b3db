/**
 * The private parts of Aedes the encode-once delivery (engine/fanout/, issue 15) touches;
 * its rows are the `encode-once-*` rows of the table in index.ts. Written for aedes 1.2.0
 * (lib/client.js, lib/write.js, lib/qos-packet.js, lib/handlers/subscribe.js,
 * lib/handlers/puback.js).
 */
import type { Client } from 'aedes'
import type { Duplex } from 'node:stream'

/** A packet as Aedes hands it to a client's deliver functions (an aedes-packet `Packet`). */
export interface AedesDelivery {
  cmd?: string
  topic: string
  payload: Buffer | string
  qos: number
  retain: boolean
  dup?: boolean
  brokerId?: string | null
  brokerCounter?: number
  clientId?: string
  /** MQTT 5 no-local; Aedes 1.2 speaks 3.1/3.1.1 only, kept for parity with deliver0. */
  nl?: boolean
}

export type Deliver = (packet: AedesDelivery, cb: () => void) => void

interface ClientInside {
  id: string
  conn: Duplex
  connecting: boolean
  connected: boolean
  errored: boolean
  _nextId: number
  duplicates: Record<string, number | undefined>
  deliver0: Deliver
  deliverQoS: Deliver
  broker: { authorizeForward: (client: Client, packet: AedesDelivery) => AedesDelivery | null | undefined | false }
  waitForDrain (callback: (err?: Error | null) => void): void
  _onError (err: Error): void
}

const inside = (client: Client): ClientInside => client as unknown as ClientInside

/**
 * Makes `deliver0` and `deliverQoS` of `client` the given functions. Aedes reads them when
 * a subscription is made (handlers/subscribe.js), so this must run before the first one:
 * in preConnect.
 */
export function replaceDeliver (client: Client, deliver0: Deliver, deliverQoS: Deliver): void {
  const c = inside(client)
  c.deliver0 = deliver0
  c.deliverQoS = deliverQoS
}

/** The byte stream of `client` (the socket, or the MQTT/WS Duplex). */
export function clientConn (client: Client): Duplex { return inside(client).conn }

/** True when lib/write.js would write to this client (CONNECT seen, not closed). */
export function clientWritable (client: Client): boolean {
  const c = inside(client)
  return c.connecting || c.connected
}

/** True once Aedes has seen an error on this client (it is being torn down). */
export function clientErrored (client: Client): boolean { return inside(client).errored }

/** The next outgoing packet id of `client`, from Aedes's counter (lib/qos-packet.js). */
export function nextPacketId (client: Client): number {
  const c = inside(client)
  const id = c._nextId
  c._nextId = id >= 65535 ? 1 : id + 1
  return id
}

/**
 * Aedes's dedupe (lib/client.js): false when this client already got the message (same
 * broker id, counter not above the last sent); true otherwise, and then it is recorded.
 */
export function firstCopy (client: Client, packet: AedesDelivery): boolean {
  const id = packet.brokerId
  if (!id) return true
  const dups = inside(client).duplicates
  const counter = packet.brokerCounter ?? 0
  if ((dups[id] ?? 0) >= counter) return false
  dups[id] = counter
  return true
}

/** Runs the broker's authorizeForward hook for one copy; the packet to send, or a falsy value to skip it. */
export function authorizeForward (client: Client, packet: AedesDelivery): AedesDelivery | null | undefined | false {
  return inside(client).broker.authorizeForward(client, packet)
}

/** Waits for 'drain' as lib/write.js does (with the broker's drainTimeout). */
export function waitForDrain (client: Client, callback: () => void): void {
  inside(client).waitForDrain(() => callback())
}

/** Tears the client down for `err`, as deliver0 does when its write fails. */
export function failClient (client: Client, err: Error): void { inside(client)._onError(err) }

/**
 * Wraps the persistence's `outgoingClearMessageId` (called for every PUBACK and PUBCOMP a
 * client sends) so that an id `notStored(client, id)` claims resolves at once with
 * nothing, as the store would for an id it does not hold. Every other call (persistent
 * sessions, the queue Aedes empties at CONNECT) goes to the store.
 */
export function skipAckLookups (persistence: unknown, notStored: (client: Client, messageId: number) => boolean): void {
  const p = persistence as { outgoingClearMessageId?: (client: Client, packet: { messageId?: number }) => Promise<unknown> }
  const clear = p.outgoingClearMessageId
  if (typeof clear !== 'function') return
  p.outgoingClearMessageId = function outgoingClearMessageId (client, packet) {
    if (typeof packet?.messageId === 'number' && notStored(client, packet.messageId)) return Promise.resolve(undefined)
    return clear.call(this, client, packet)
  }
}
