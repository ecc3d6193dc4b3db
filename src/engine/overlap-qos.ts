import type { Aedes, Client } from 'aedes'
import { ruleCovers, splitLevels, type Levels } from '../core/topics/topic-match.js'

interface Delivery { topic: string, qos: number, brokerId?: string | null, brokerCounter?: number }
type Deliver = (packet: Delivery, cb: () => void) => void

interface DeliveringClient {
  duplicates: Record<string, number | undefined>
  deliver0: Deliver
  deliverQoS: Deliver
  subscriptions: Record<string, { qos: number } | undefined>
}

const FILTERS = Symbol('fusion.filters')
const WRAPPED = Symbol('fusion.deliverGranted')
interface Filters { readonly wildcard: boolean, readonly list: ReadonlyArray<{ readonly filter: string, readonly levels: Levels }> }
interface Tracked { [FILTERS]?: Filters | undefined }

/**
 * The QoS of a delivered message is the lower of the publish's QoS and the highest QoS
 * granted to the client's subscriptions that match it (MQTT 3.1.1 section 3.8.4 and
 * [MQTT-3.3.5-1] for overlapping subscriptions). Aedes 1.2 applies the granted QoS only
 * when the client has a subscription on the exact topic (moscajs/aedes#1074). Through a
 * wildcard subscription it delivers at the publish's QoS: QoS 2 through a QoS 1 `a/+`,
 * a QoS 1 retained message through a QoS 0 `a/#`. With overlapping subscriptions it
 * keeps the first copy its router produces, at that subscription's QoS, then lowers a
 * QoS 1/2 copy to an exact-topic subscription's QoS.
 *
 * This puts one function in front of both of the client's deliver functions (Aedes reads
 * them when a subscription is made, so it is installed in preConnect, before the first).
 * A client without wildcard subscriptions goes straight to Aedes, whose exact-topic rule
 * is right for it; otherwise the one copy goes out at the QoS the specification gives, as
 * Mosquitto 2 does.
 */
export function deliverAtGrantedQos (client: Client): void {
  const c = client as unknown as DeliveringClient & Tracked & { [WRAPPED]?: true }
  if (c[WRAPPED]) return
  c[WRAPPED] = true
  const aedes0 = c.deliver0
  const aedesQoS = c.deliverQoS
  const route = (fallback: Deliver): Deliver => function deliverGranted (packet, cb) {
    const filters = (c[FILTERS] ??= filtersOf(c.subscriptions))
    if (!filters.wildcard) return fallback(packet, cb)
    // A copy already sent (another of the client's subscriptions got there first): Aedes's
    // deliver0 only drops it, while its deliverQoS would also clear the stored message id
    // of the copy that was sent, for a persistent session.
    if (isDuplicate(c, packet)) return aedes0(packet, cb)
    const target = splitLevels(packet.topic)
    let highest = -1
    let exact: { qos: number } | undefined
    for (const f of filters.list) {
      if (!ruleCovers(f.levels, target)) continue
      const sub = c.subscriptions[f.filter]
      if (!sub) continue
      if (sub.qos > highest) highest = sub.qos
      if (f.filter === packet.topic) exact = sub
    }
    // No subscription matches (a queued message replayed after an unsubscribe): as Aedes would.
    if (highest < 0) return fallback(packet, cb)
    const qos = Math.min(packet.qos, highest)
    if (qos === 0) return aedes0(packet, cb)
    packet.qos = qos
    if (!exact || exact.qos >= qos) return aedesQoS(packet, cb)
    // Aedes reads the exact subscription's QoS in the setImmediate that builds the packet
    // (lib/client.js, deliverQoS) and lowers the copy to it. Immediates run in the order
    // they were queued: raise it in the one queued just before and restore it in the one
    // queued just after, so nothing else ever sees the raised value.
    const held = exact
    const saved = held.qos
    setImmediate(() => { held.qos = qos })
    aedesQoS(packet, cb)
    setImmediate(() => { held.qos = saved })
  }
  c.deliver0 = route(aedes0)
  c.deliverQoS = route(aedesQoS)
}

/**
 * Forgets a client's cached filter list when its filters may have changed: after a
 * SUBSCRIBE or UNSUBSCRIBE, and once connected (a persistent session's subscriptions
 * are restored without a 'subscribe' event). A changed QoS on a known filter needs
 * nothing: the QoS is read from the client's subscriptions at each delivery.
 */
export function trackSubscriptionChanges (broker: Aedes): void {
  const forget = (client: Client | null | undefined): void => { if (client) (client as unknown as Tracked)[FILTERS] = undefined }
  broker.on('subscribe', (_subs, client) => forget(client))
  broker.on('unsubscribe', (_subs, client) => forget(client))
  broker.on('client', forget)
}

interface OfflineSub { clientId: string, qos: number }

/**
 * What an offline session's queue keeps: one copy per session, however many of its
 * subscriptions match, at min(published QoS, highest granted QoS). Aedes hands the
 * persistence every matching subscription and the packet at its published QoS. The
 * memory store (`--memory`) queued one copy per subscription, so a session with `a/+`
 * and `a/#` got every message twice when it came back; and both stores replay what they
 * queued at the QoS it was queued with, so a QoS 2 publish came back at QoS 2 to a
 * QoS 1 subscription.
 */
export function queueAtGrantedQos (persistence: unknown): void {
  const p = persistence as { outgoingEnqueueCombi?: (subs: OfflineSub[], packet: { qos: number }) => Promise<unknown> }
  const enqueue = p.outgoingEnqueueCombi
  if (typeof enqueue !== 'function') return
  p.outgoingEnqueueCombi = function (subs, packet) {
    if (!subs || subs.length === 0) return enqueue.call(this, subs, packet)
    const byClient = new Map<string, OfflineSub>()
    for (const sub of subs) {
      const seen = byClient.get(sub.clientId)
      if (!seen || sub.qos > seen.qos) byClient.set(sub.clientId, sub)
    }
    const byQos = new Map<number, OfflineSub[]>()
    for (const sub of byClient.values()) {
      const qos = Math.min(packet.qos, sub.qos)
      if (qos === 0) continue // QoS 0 is not queued for offline sessions
      const list = byQos.get(qos)
      if (list) list.push(sub)
      else byQos.set(qos, [sub])
    }
    // The stores copy the packet they are given (new Packet(packet)): a copy per QoS.
    return Promise.all([...byQos].map(([qos, list]) => enqueue.call(this, list, qos === packet.qos ? packet : { ...packet, qos })))
  }
}

function filtersOf (subs: Record<string, unknown>): Filters {
  const list = Object.keys(subs).map((filter) => ({ filter, levels: splitLevels(filter) }))
  return { wildcard: list.some((f) => f.levels.includes('+') || f.levels.includes('#')), list }
}

// Aedes's own test (lib/client.js, dedupe), without its side effect of recording the copy.
function isDuplicate (c: DeliveringClient, packet: Delivery): boolean {
  return !!packet.brokerId && (c.duplicates[packet.brokerId] ?? 0) >= (packet.brokerCounter ?? 0)
}
