import type { Aedes, Client } from 'aedes'
import type { PresenceTracker } from './presence.js'
import { clientUsername } from './create-broker.js'
import { cleanName } from '../core/admit.js'
import { disconnectedCleanly, willTopic } from './internals/index.js'

// Clients whose own will is on their presence topic.
const ownPresenceWill = new WeakSet<Client>()

/**
 * Publishes `presence/<clientId>` for MQTT clients. A device whose own will is on its
 * presence topic keeps that will as its offline notice when it dies; we only speak for
 * it on a clean disconnect (when the broker discards the will).
 */
export function watchMqttPresence (broker: Aedes, presence: PresenceTracker): () => void {
  const onReady = (client: Client): void => {
    // Aedes emits clientReady at the end of its connect series, after CONNACK is out: a
    // client that is already gone (a denied publish, a quick connect-publish-disconnect)
    // has had its clientDisconnect, and an "online" now would be retained for ever.
    if (client.closed) return
    if (willTopic(client) === `presence/${client.id}`) ownPresenceWill.add(client)
    presence.announce(client.id, 'online', cleanName(clientUsername(client)) ?? client.id, 'mqtt').catch(() => {})
  }
  const onGone = (client: Client): void => {
    if (ownPresenceWill.has(client) && !disconnectedCleanly(client)) return
    presence.announce(client.id, 'offline', cleanName(clientUsername(client)) ?? client.id, 'mqtt').catch(() => {})
  }
  broker.on('clientReady', onReady)
  broker.on('clientDisconnect', onGone)
  return () => {
    broker.removeListener('clientReady', onReady)
    broker.removeListener('clientDisconnect', onGone)
  }
}
