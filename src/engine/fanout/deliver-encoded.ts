import type { Aedes, Client } from 'aedes'
import type { Duplex } from 'node:stream'
import {
  authorizeForward, clientConn, clientErrored, clientSubscriptions, clientWritable, failClient, firstCopy,
  nextPacketId, replaceDeliver, waitForDrain, type Deliver
} from '../internals/index.js'
import { filterMatches } from './filter-match.js'
import { encodingOf } from './publish-bytes.js'

/**
 * Encode once, write the same bytes to every subscriber, cork until the end of the
 * event-loop turn: the MQTT side of the lever the /ws hub already uses (issue 15).
 *
 * Stock Aedes 1.2, for every subscriber of every message, copies the packet twice
 * (aedes-packet), queues a `setImmediate`, serialises the packet with mqtt-packet in four
 * or five `write()` calls, corks until the next tick (which comes after each immediate,
 * so every copy is a `writev` system call of its own), and queues another `setImmediate`
 * to tell the router it is done. A CPU profile of a 1 -> 100 fan-out put 41 % of the
 * gateway's time in `writev` alone.
 *
 * Here a copy is one `write()` of bytes encoded once per message (publish-bytes.ts) into
 * a stream corked until one `setImmediate` at the end of the turn: everything a client
 * is sent in one turn, from every publisher read in that turn, leaves in one `writev`;
 * the router's callbacks are called together from that same immediate.
 *
 * What stays as Aedes does it: the order of copies to one client (the router's order;
 * all of the client's deliveries, retained ones included, take this path), dedupe of
 * overlapping subscriptions, the authorizeForward hook once per copy, packet ids from
 * the client's own counter, waiting for 'drain' when a write says the stream is full,
 * and the slow-consumer cut of the doors (their `write()` wrapper still sees every
 * write). What is fixed on the way: the QoS is min(published, highest QoS granted to the
 * client's matching subscriptions) [MQTT-3.3.5-1] (overlap-qos.ts does the same on the
 * stock path), and DUP is never propagated from the incoming PUBLISH [MQTT-3.3.1-3].
 *
 * Only for clean sessions: Aedes neither stores nor retransmits their outgoing QoS 1/2
 * messages, so a copy is complete once written. A persistent session's copies are
 * stored before they are written (outgoingUpdate) and stay on Aedes's path.
 */
export function deliverEncodedOnce (client: Client): void {
  const deliver: Deliver = function deliverEncoded (packet, cb) {
    // MQTT 5 no-local, as deliver0 (Aedes 1.2 speaks 3.1.1, kept for parity).
    if (packet.nl && packet.clientId === client.id) return later(cb)
    if (!firstCopy(client, packet)) return later(cb)
    const out = authorizeForward(client, packet)
    if (!out) return later(cb)
    const granted = highestGranted(client, out.topic)
    // No subscription of the client matches any more (an UNSUBSCRIBE raced this copy):
    // no new message for it [MQTT-3.10.4-2].
    if (granted < 0) return later(cb)
    if (!clientWritable(client)) {
      failClient(client, new Error('connection closed'))
      return later(cb)
    }
    const enc = encodingOf(out)
    if (!enc) {
      // What Aedes's write() says when mqtt-packet cannot encode a packet.
      failClient(client, new Error('packet received not valid'))
      return later(cb)
    }
    const qos = Math.min(out.qos, granted)
    const conn = clientConn(client)
    corkUntilFlush(conn)
    let ok: boolean
    if (qos === 0) {
      ok = conn.write(enc.qos0())
    } else {
      const id = nextPacketId(client)
      markUnstored(client, id)
      ok = enc.writeWithId(conn, qos as 1 | 2, id)
    }
    if (!ok && !conn.destroyed && !clientErrored(client)) waitForDrain(client, cb)
    else later(cb)
  }
  replaceDeliver(client, deliver, deliver)
}

const UNSTORED = Symbol('fusion.unstoredIds')
type WithIds = Client & { [UNSTORED]?: Uint8Array | undefined }

/**
 * Which packet ids of a client's QoS 1/2 copies went out from here without being stored
 * (a clean session's never are): one bit per id, 8 KiB per client that receives QoS 1/2,
 * whatever it leaves unacknowledged.
 */
function markUnstored (client: Client, id: number): void {
  const bits = ((client as WithIds)[UNSTORED] ??= new Uint8Array(8192))
  bits[id >> 3] = (bits[id >> 3] as number) | (1 << (id & 7))
}

/**
 * True (once) when `id` is a copy this path sent to `client` without storing it: its
 * PUBACK or PUBCOMP has nothing to clear in the store. Installed with skipAckLookups.
 */
export function sentUnstored (client: Client, id: number): boolean {
  const bits = (client as WithIds)[UNSTORED]
  if (!bits || id < 0 || id > 65535) return false
  const mask = 1 << (id & 7)
  const byte = bits[id >> 3] as number
  if (!(byte & mask)) return false
  bits[id >> 3] = byte & ~mask
  return true
}

const FILTERS = Symbol('fusion.encodedFilters')
type WithFilters = Client & { [FILTERS]?: string[] | undefined }

/**
 * The highest QoS granted to the client's subscriptions that match `topic`; -1 if none.
 * The client's filter names are listed once and kept until a SUBSCRIBE, UNSUBSCRIBE or
 * (re)connect (trackEncodedFilters); each QoS is read live. A list that may lag behind a
 * subscription being made is checked again from the client's subscriptions before a
 * copy is dropped for matching nothing.
 */
function highestGranted (client: Client, topic: string): number {
  const c = client as WithFilters
  const subs = clientSubscriptions(client)
  const best = highestOf(subs, (c[FILTERS] ??= Object.keys(subs)), topic)
  if (best >= 0) return best
  c[FILTERS] = Object.keys(subs)
  return highestOf(subs, c[FILTERS], topic)
}

function highestOf (subs: Readonly<Record<string, { readonly qos: number } | undefined>>, filters: readonly string[], topic: string): number {
  let best = -1
  for (let i = 0; i < filters.length; i++) {
    const filter = filters[i] as string
    const qos = subs[filter]?.qos ?? -1
    if (qos > best && filterMatches(filter, topic)) best = qos
  }
  return best
}

/** Forgets a client's filter list whenever its filters may have changed. */
export function trackEncodedFilters (broker: Aedes): void {
  const forget = (client: Client | null | undefined): void => { if (client) (client as WithFilters)[FILTERS] = undefined }
  broker.on('subscribe', (_subs, client) => forget(client))
  broker.on('unsubscribe', (_subs, client) => forget(client))
  broker.on('client', forget)
}

const CORKED = Symbol('fusion.corkedUntilFlush')
type Flagged = Duplex & { [CORKED]?: boolean }

let corked: Flagged[] = []
let callbacks: Array<() => void> = []
let scheduled = false

function schedule (): void {
  if (scheduled) return
  scheduled = true
  setImmediate(flush)
}

function corkUntilFlush (stream: Flagged): void {
  if (stream[CORKED]) return
  stream[CORKED] = true
  stream.cork()
  corked.push(stream)
  schedule()
}

function later (cb: () => void): void {
  callbacks.push(cb)
  schedule()
}

/**
 * Holds what Aedes writes to `client` (its PUBACK, PUBREC) until the end of the turn, so
 * the acknowledgements of every message it sent in one read leave in one `writev` too.
 * Called when a QoS 1/2 PUBLISH of the client is admitted.
 */
export function holdAcksUntilFlush (client: Client): void {
  corkUntilFlush(clientConn(client))
}

/**
 * The end of the turn: the router hears that its copies are done, then every corked
 * stream leaves in one write. The callbacks come first: what they write (the held
 * PUBACKs, released when a publish completes; copies of the next packets they let Aedes
 * read) goes into streams still corked and leaves with the rest. A stream first corked
 * by those callbacks is flushed by the next immediate.
 */
function flush (): void {
  scheduled = false
  const streams = corked
  const cbs = callbacks
  corked = []
  callbacks = []
  for (const cb of cbs) cb()
  for (const s of streams) {
    s[CORKED] = false
    s.uncork()
  }
}
