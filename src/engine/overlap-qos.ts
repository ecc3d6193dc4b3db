import type { Aedes, Client } from 'aedes'
import { ruleCovers, splitLevels, type Levels } from '../core/topics/topic-match.js'
import { clientSubscriptions, deliverAtQos, splitOfflineQueue, type OfflineSub } from './internals/index.js'

interface Filters { readonly wildcard: boolean, readonly list: ReadonlyArray<{ readonly filter: string, readonly levels: Levels }> }

// Each client's filters, split once: cleared when they may have changed.
const filtersByClient = new WeakMap<Client, Filters>()

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
  deliverAtQos(client, (topic) => highestGrantedQos(client, topic))
}

/**
 * The highest QoS granted to `client`'s subscriptions that match `topic`, -1 when none
 * does, or 'stock' when the client has no wildcard subscription (Aedes's exact-topic
 * rule is right for it).
 */
export function highestGrantedQos (client: Client, topic: string): number | 'stock' {
  const subs = clientSubscriptions(client)
  let filters = filtersByClient.get(client)
  if (!filters) { filters = filtersOf(subs); filtersByClient.set(client, filters) }
  if (!filters.wildcard) return 'stock'
  const target = splitLevels(topic)
  let highest = -1
  for (const f of filters.list) {
    if (!ruleCovers(f.levels, target)) continue
    const sub = subs[f.filter]
    if (sub && sub.qos > highest) highest = sub.qos
  }
  return highest
}

/**
 * Forgets a client's cached filter list when its filters may have changed: after a
 * SUBSCRIBE or UNSUBSCRIBE, and once connected (a persistent session's subscriptions
 * are restored without a 'subscribe' event). A changed QoS on a known filter needs
 * nothing: the QoS is read from the client's subscriptions at each delivery.
 */
export function trackSubscriptionChanges (broker: Aedes): void {
  const forget = (client: Client | null | undefined): void => { if (client) filtersByClient.delete(client) }
  broker.on('subscribe', (_subs, client) => forget(client))
  broker.on('unsubscribe', (_subs, client) => forget(client))
  broker.on('client', forget)
}

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
  splitOfflineQueue(persistence, offlineCopies)
}

/** The offline subscriptions grouped by the QoS of their one copy, each with its packet. */
export function offlineCopies<P extends { qos: number }> (subs: OfflineSub[], packet: P): Array<[OfflineSub[], P]> {
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
  return [...byQos].map(([qos, list]) => [list, qos === packet.qos ? packet : { ...packet, qos }])
}

function filtersOf (subs: Readonly<Record<string, unknown>>): Filters {
  const list = Object.keys(subs).map((filter) => ({ filter, levels: splitLevels(filter) }))
  return { wildcard: list.some((f) => f.levels.includes('+') || f.levels.includes('#')), list }
}
