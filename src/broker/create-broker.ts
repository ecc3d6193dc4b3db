import { Aedes } from 'aedes'
import type { AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes'
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js'
import type { Acl, Door, Identity } from '../policy/acl.js'
import type { Stats } from '../stats.js'
import type { Store } from '../store/open-store.js'
import { checkTopicFilter, checkTopicName, type TopicLimits } from '../topics/topic-rules.js'
import { stampOrigin } from '../bridge/origin.js'
import type { PubackGate } from './durable-puback.js'

const DOOR = Symbol('fusion.door')
const USERNAME = Symbol('fusion.username')

interface TaggedClient { [DOOR]?: Door, [USERNAME]?: string }

/** Marks which door an Aedes client came in by (set by the transport right after handle()). */
export function tagClientDoor (client: Client, door: Door): void { (client as unknown as TaggedClient)[DOOR] = door }

/** The door of an Aedes client. */
export function clientDoor (client: Client): Door { return (client as unknown as TaggedClient)[DOOR] ?? 'mqtt' }

/** The username an MQTT client logged in with, if any. */
export function clientUsername (client: Client): string | undefined { return (client as unknown as TaggedClient)[USERNAME] }

/** The identity the policy sees for an MQTT client. */
export function mqttIdentity (client: Client): Identity {
  return { clientId: client.id, username: clientUsername(client), door: clientDoor(client) }
}

export interface BrokerDeps {
  readonly store: Store
  readonly acl: Acl
  readonly stats: Stats
  readonly limits: TopicLimits
  readonly id?: string | undefined
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, err?: unknown) => void
  /** Holds QoS 1 PUBACKs until stored; undefined for stock Aedes behaviour. */
  readonly durability?: Durability | undefined
}

/** The PUBACK gate and how to find the history write of a stamped message (bound late). */
export interface Durability {
  readonly gate: PubackGate
  storedFor: (stamp: object) => Promise<void> | undefined
}

/**
 * Builds the embedded Aedes broker. Its hooks are thin: they call the shared policy
 * (the same functions the hub and HTTP call) and stamp every accepted publish with
 * its origin, so the hub and the history see who sent it and when.
 */
export async function createBroker (deps: BrokerDeps): Promise<Aedes> {
  const { acl, stats, limits, durability } = deps
  const persistence = deps.store.onDisk ? new AsyncLevelPersistence(deps.store.db) : undefined
  const broker = await Aedes.createBroker({
    id: deps.id,
    persistence,
    // A client that stops reading for this long is dropped; Aedes's 60 s default lets
    // one frozen subscriber hold a publisher's queue for a minute.
    drainTimeout: 10_000,
    // Never accept a keepalive so long that a dead device stays "online" for hours.
    keepaliveLimit: 3600,
    maxTopicLevels: limits.maxTopicLevels,
    authenticate (client, username, _password, done) {
      if (username) (client as unknown as TaggedClient)[USERNAME] = username
      done(null, true)
    },
    authorizePublish (client: Client | null, packet: PublishPacket, done) {
      if (!client) return done(null)
      const who = mqttIdentity(client)
      try {
        checkTopicName(packet.topic, limits)
        acl.checkPublish(who, packet.topic)
      } catch (err) {
        stats.dropped.aclDenied++
        return done(err as Error)
      }
      stats.doors[who.door].messagesIn++
      stampOrigin(packet, { ts: Date.now(), via: 'mqtt', from: who.username ?? who.clientId, clientId: who.clientId })
      if (durability && packet.qos === 1 && typeof packet.messageId === 'number') durability.gate.expect(client.conn, packet.messageId)
      done(null)
    },
    authorizeSubscribe (client: Client, sub: Subscription, done) {
      try {
        checkTopicFilter(sub.topic, limits)
        acl.checkSubscribe(mqttIdentity(client), sub.topic)
      } catch {
        // [MQTT-3.9.3] a refused filter is SUBACK return code 0x80; the connection stays
        return done(null, null)
      }
      done(null, sub)
    },
    // Runs after the retained store and the offline-session enqueue of a publish: the
    // point from which a QoS 1 message survives a crash, so its PUBACK may go.
    published (packet, client, done) {
      done(null)
      if (!durability || !client || packet.qos !== 1) return
      const messageId = (packet as unknown as { messageId?: number }).messageId
      if (typeof messageId !== 'number') return
      const stored = packet.properties ? durability.storedFor(packet.properties) : undefined
      if (!stored) return durability.gate.release(client.conn as never, messageId, true)
      stored.then(() => durability.gate.release(client.conn as never, messageId, true),
        () => durability.gate.release(client.conn as never, messageId, false))
    },
    authorizeForward (client: Client, packet: AedesPublishPacket) {
      stats.doors[clientDoor(client)].messagesOut++
      return packet
    }
  })
  // Aedes emits 'error' for store failures while queueing for offline sessions; an
  // unhandled 'error' would end the process.
  ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => deps.log('error', 'broker: store error', err))
  return broker
}
