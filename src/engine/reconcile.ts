import type { Aedes, Client } from 'aedes'
import type { Acl } from '../core/policy/acl.js'
import { mqttIdentity, verifiedUser } from './create-broker.js'
import { brokerClients, brokerPersistence, clientSubscriptions, liveClient, persistenceOf } from './internals/index.js'
import type { SessionOwners } from './session-owners.js'
import type { ForwardCheck } from './forward-check.js'
import type { Stats } from '../core/stats.js'
import type { LogFn } from '../core/types.js'

/** What a reload needs beyond the live clients: the stored sessions and the delivery check. */
export interface StoredSessions {
  readonly owners: SessionOwners
  readonly forward: ForwardCheck
  readonly stats: Stats
  readonly log: LogFn
  /** The last offline pass (for tests and the shutdown): settles when it is done. */
  pending?: Promise<number>
}

const stored = new WeakMap<Aedes, StoredSessions>()

/** Lets reconcileMqttClients reach the stored sessions of `broker`. */
export function registerStoredSessions (broker: Aedes, sessions: StoredSessions): void { stored.set(broker, sessions) }

/** The stored sessions registered for `broker` (the last offline pass is its `pending`). */
export function storedSessionsOf (broker: Aedes): StoredSessions | undefined { return stored.get(broker) }

/**
 * The offline half of a reload (issue 13, item 6): the stored subscriptions of every
 * persistent session that is not connected, checked against the new rules as the owner
 * recorded at CONNECT; the refused ones are removed from the persistence, so nothing more
 * is queued on them. What was queued before stays in the queue, and is dropped at
 * delivery by authorizeForward (forward-check.ts). Returns how many were removed.
 */
async function revokeOffline (broker: Aedes, acl: Acl, sessions: StoredSessions): Promise<number> {
  const persistence = persistenceOf(broker)
  let revoked = 0
  for (const [clientId, owner] of [...sessions.owners.entries()]) {
    if (liveClient(broker, clientId)) continue
    const who = { clientId, username: owner.user, door: 'mqtt' as const }
    const subs = await persistence.subscriptionsByClient({ id: clientId })
    const denied = (subs ?? []).map((s) => s.topic)
      .filter((filter) => { try { acl.checkSubscribe(who, filter); return false } catch { return true } })
    if (denied.length === 0) continue
    await persistence.removeSubscriptions({ id: clientId }, denied)
    revoked += denied.length
  }
  sessions.stats.stored.offlineRevoked += revoked
  return revoked
}


/**
 * After a reload of the users and rules: closes the MQTT clients of users who are gone
 * and unsubscribes every client from the filters the ACL now refuses. MQTT 3.1.1 cannot
 * tell a client, so it just stops receiving; without an UNSUBSCRIBE packet Aedes leaves
 * a persistent session's stored subscriptions alone, so they are removed there too.
 */
export function reconcileMqttClients (broker: Aedes, acl: Acl, userGone?: (user: string) => boolean): { closed: number, revoked: number } {
  const sessions = stored.get(broker)
  // Answers given under the old rules are forgotten before anything else is delivered.
  sessions?.forward.reset()
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
  if (sessions) {
    const pass = revokeOffline(broker, acl, sessions)
    sessions.pending = pass.catch((err: Error) => { sessions.log('error', 'reload: the stored subscriptions of offline sessions could not be checked', err); return 0 })
    void sessions.pending.then((n) => { if (n) sessions.log('info', `reload: revoked ${n} stored subscription(s) of offline sessions`) })
  }
  return { closed, revoked }
}
