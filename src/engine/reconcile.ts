import type { Aedes, Client } from 'aedes'
import type { Acl } from '../core/policy/acl.js'
import { mqttIdentity, verifiedUser } from './create-broker.js'
import { brokerClients, brokerPersistence, clientSubscriptions } from './internals/index.js'

/**
 * After a reload of the users and rules: closes the MQTT clients of users who are gone
 * and unsubscribes every client from the filters the ACL now refuses. MQTT 3.1.1 cannot
 * tell a client, so it just stops receiving; without an UNSUBSCRIBE packet Aedes leaves
 * a persistent session's stored subscriptions alone, so they are removed there too.
 */
export function reconcileMqttClients (broker: Aedes, acl: Acl, userGone?: (user: string) => boolean): { closed: number, revoked: number } {
  let closed = 0
  let revoked = 0
  for (const client of brokerClients(broker)) {
    const user = verifiedUser(client)
    if (user !== undefined && userGone?.(user)) {
      client.close()
      closed++
      continue
    }
    const who = mqttIdentity(client)
    const denied = Object.keys(clientSubscriptions(client))
      .filter((filter) => { try { acl.checkSubscribe(who, filter); return false } catch { return true } })
    if (denied.length === 0) continue
    client.unsubscribe(denied as never, () => {})
    if (!client.clean) brokerPersistence(broker).removeSubscriptions(client, denied).catch(() => {})
    revoked += denied.length
  }
  return { closed, revoked }
}
