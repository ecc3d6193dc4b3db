import { performance } from 'node:perf_hooks'
import type { LogFn } from '../core/types.js'
import { Aedes } from 'aedes'
import type { AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes'
import { indexRetained } from './retained-index.js'
import { brokerPersistence, createEmbeddedPersistence, isClientWill, pendingWill, skipAckLookups, writeNumbersUncached } from './internals/index.js'
import { deliverAtGrantedQos, queueAtGrantedQos, trackSubscriptionChanges } from './overlap-qos.js'
import { deliverEncodedOnce, holdAcksUntilFlush, sentUnstored, trackEncodedFilters } from './fanout/deliver-encoded.js'
import type { Acl, Door, Identity } from '../core/policy/acl.js'
import type { Stats } from '../core/stats.js'
import type { Store } from '../core/store/open-store.js'
import { checkTopicFilter, type TopicLimits } from '../core/topics/topic-rules.js'
import { readOrigin, stampOrigin } from '../core/origin.js'
import { cleanName, type Admit, type Submission } from '../core/admit.js'
import type { PubackGate } from './durable-puback.js'
import type { AuthenticateError } from 'aedes'
import { FusionError } from '../core/errors.js'
import type { Auth } from '../core/policy/auth.js'
import type { RateVerdict } from '../core/policy/token-bucket.js'
import { clientIdProblem, connectCloseReason } from '../core/policy/mqtt-rules.js'
import { throttledLog } from '../core/log-throttle.js'
import { SessionOwners } from './session-owners.js'
import { ForwardCheck } from './forward-check.js'
import { presenceSaysOnline } from './presence-prune.js'
import { dropDeniedPublishes, liveClient, markDenied } from './internals/index.js'
import { TurnPacer } from '../core/turn-pacer.js'

/** Milliseconds of wills published per event-loop turn (TurnPacer). */
const WILL_SLICE_MS = 10

// The refusals --deny-action ignore acknowledges and drops: the rules' (ACL_DENIED, which
// includes the read-only `$` topics and another client's presence). A client over its
// size or rate limit is still disconnected: acknowledging a flood gives it no reason to
// slow down, and a topic that breaks MQTT itself (BAD_TOPIC) is a protocol violation
// ([MQTT-4.7.3-2]).
const IGNORABLE = new Set(['ACL_DENIED'])

const DOOR = Symbol('fusion.door')
const USERNAME = Symbol('fusion.username')
const VERIFIED = Symbol('fusion.verifiedUser')
const RAW_ID = Symbol('fusion.rawClientId')
const RATE = Symbol('fusion.rate')
const WHO = Symbol('fusion.identity')

interface TaggedClient {
  [DOOR]?: Door
  [USERNAME]?: string
  [VERIFIED]?: string
  [RAW_ID]?: string
  [RATE]?: { take (): RateVerdict }
  [WHO]?: Identity
}

function asBuffer (payload: Buffer | string | undefined): Buffer {
  return typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload ?? Buffer.alloc(0)
}

/** A CONNACK refusal: 2 identifier rejected, 3 server unavailable, 4 bad user name or password, 5 not authorized. */
function connackError (returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

/**
 * The IP an MQTT client connects from: the upgrade request's socket for /mqtt, else the
 * TCP or TLS socket itself. Password checks are limited per address with it.
 */
function peerAddress (client: Client): string | undefined {
  const req = client.req as { socket?: { remoteAddress?: string } } | undefined
  return req?.socket?.remoteAddress ?? (client.conn as { remoteAddress?: string }).remoteAddress
}

/** Marks which door an Aedes client came in by (set by the transport right after handle()). */
export function tagClientDoor (client: Client, door: Door): void { (client as unknown as TaggedClient)[DOOR] = door }

/** The door of an Aedes client. */
export function clientDoor (client: Client): Door { return (client as unknown as TaggedClient)[DOOR] ?? 'mqtt' }

/** The username an MQTT client logged in with, if any. */
export function clientUsername (client: Client): string | undefined { return (client as unknown as TaggedClient)[USERNAME] }

/**
 * The identity the policy sees for an MQTT client. Its username is the one it proved
 * (auth on); a name claimed with auth off is shown as `from` but never reaches the ACL.
 */
/** The user an MQTT client proved (password or token), when auth is on. */
export function verifiedUser (client: Client): string | undefined { return (client as unknown as TaggedClient)[VERIFIED] }

export function mqttIdentity (client: Client): Identity {
  return { clientId: client.id, username: (client as unknown as TaggedClient)[VERIFIED], door: clientDoor(client) }
}

export interface BrokerDeps {
  readonly store: Store
  readonly acl: Acl
  /** The one admission path (core/admit.ts): every publish and will goes through it. */
  readonly admit: Admit
  readonly stats: Stats
  readonly limits: TopicLimits & { readonly maxPayload: number }
  readonly id?: string | undefined
  readonly log: LogFn
  /** Holds QoS 1 PUBACKs until stored; undefined for stock Aedes behaviour. */
  readonly durability?: Durability | undefined
  /** The user store and tokens when auth is on; undefined for anonymous access. */
  readonly auth?: Auth | undefined
  /** Makes each client's message-rate gate; undefined for no limit. */
  readonly rateGate?: (() => { take (): RateVerdict }) | undefined
  /** Cluster mode: the shared emitter (mqemitter-redis) instead of Aedes's in-process one. */
  readonly mq?: unknown
  /** Cluster mode: the shared persistence (Redis) instead of the embedded store. */
  readonly persistence?: unknown
  /**
   * Cluster mode: runs once a publish passed the policy. A promise holds the publish
   * (and its PUBACK) until it settles; a rejection refuses it and the connection closes.
   */
  readonly admitPublish?: ((packet: PublishPacket) => Promise<void> | undefined) | undefined
  /** Who owns each persistent session (session-owners.ts); in memory when not given. */
  readonly owners?: SessionOwners | undefined
  /** Checks each delivery against the receiver's read rights; reset on reload. */
  readonly forward?: ForwardCheck | undefined
  /** What a publish the policy refuses does: acknowledged and dropped (default), or the connection closes. */
  readonly denyAction?: 'ignore' | 'disconnect' | undefined
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
  const { acl, admit, stats, limits, durability } = deps
  let broker: Aedes | undefined
  const owners = deps.owners ?? await SessionOwners.open()
  const forward = deps.forward ?? new ForwardCheck(acl)
  const denyAction = deps.denyAction ?? 'ignore'
  const noisy = throttledLog(deps.log)
  const willPacer = new TurnPacer(WILL_SLICE_MS)
  writeNumbersUncached()

  /** Why `client`'s will cannot be kept, or undefined (and then it is stamped). */
  const checkWill = (client: Client): string | undefined => {
    const will = pendingWill(client)
    if (!will) return undefined
    const who = mqttIdentity(client)
    const name = clientUsername(client) ?? who.clientId
    try {
      admit.check({ source: 'mqtt-will', who, name, topic: will.topic, payload: asBuffer(will.payload) })
    } catch (err) {
      return `the will: ${(err as FusionError).message}`
    }
    // A will saying "online" on one's own presence topic would show the client online for
    // ever once it is gone (issue 13, item 7): a will there must announce offline.
    if (will.topic === `presence/${who.clientId}` && presenceSaysOnline(asBuffer(will.payload))) {
      return `the will on ${will.topic} says online: a presence will must announce offline`
    }
    stampOrigin(will, { ts: Date.now(), via: 'mqtt', from: cleanName(name) ?? who.clientId, clientId: who.clientId, door: who.door, user: who.username })
    return undefined
  }

  /**
   * The submission of a will Aedes publishes from its store, or undefined for any other
   * publish. A stored will without the identity stamp (left by an older version) has
   * nothing to be admitted as: its submission is refused by the ACL-free rule below.
   */
  const storedWillOf = (client: Client | null, packet: PublishPacket): Submission | FusionError | undefined => {
    if (client && isClientWill(client, packet)) return undefined
    // Only the persistence's will records carry `brokerId` (putWill sets it): a packet off
    // the wire never does, whatever properties it claims, so it cannot pose as a will.
    if (client && (packet as { brokerId?: unknown }).brokerId === undefined) return undefined
    const stamp = readOrigin(packet)
    if (client && stamp?.door === undefined) return undefined
    if (stamp?.door === undefined) return new FusionError('NOT_AUTHORIZED', 'a stored will without the identity of its client')
    return { source: 'stored-will', who: { clientId: stamp.clientId, username: stamp.user, door: stamp.door }, name: stamp.from, topic: packet.topic, payload: asBuffer(packet.payload) }
  }

  const dropStoredWill = (packet: PublishPacket): void => {
    const raw = packet as PublishPacket & { clientId?: string, brokerId?: string }
    if (!broker || raw.clientId === undefined) return
    brokerPersistence(broker).delWill({ id: raw.clientId, brokerId: raw.brokerId }).catch(() => {})
  }

  let persistence = deps.persistence
  if (!persistence) {
    // The embedded store, with the retained index in front (see retained-index.ts).
    const db = deps.store.onDisk ? deps.store.db : undefined
    const local = createEmbeddedPersistence(db)
    await indexRetained(local, db)
    persistence = local
  }
  queueAtGrantedQos(persistence)
  skipAckLookups(persistence, sentUnstored)
  broker = await Aedes.createBroker({
    id: deps.id,
    mq: deps.mq,
    persistence,
    // A client that stops reading for this long is dropped; Aedes's 60 s default lets
    // one frozen subscriber hold a publisher's queue for a minute.
    drainTimeout: 10_000,
    // The wills of a node that died (a cluster peer, or this node's own previous run on
    // the same store) are published once it has missed three heartbeats, at the next
    // check, which runs every four: 3 to 7 minutes with Aedes's 60 s, 15 to 35 s with 5 s.
    // A node whose event loop stalled for 15 s would be taken for dead.
    heartbeatInterval: 5_000,
    // No keepaliveLimit: Aedes answers a keepalive over it (or of 0, "no keepalive", which
    // [MQTT-3.1.2-24] allows) with CONNACK 6, a code MQTT 3.1.1 does not have. Dead peers
    // without a keepalive are found by the TCP stack and the send high-water mark.
    // Aedes closes the connection on a filter deeper than this, before our hooks run: give
    // it the hard ceiling of the option, so authorizeSubscribe answers a filter over the
    // configured depth with SUBACK 0x80 as it does for every other refused filter.
    maxTopicLevels: Math.max(limits.maxTopicLevels, 100),
    // A socket that connects and says nothing holds a slot this long (Aedes: 30 s).
    connectTimeout: 10_000,
    preConnect (client, packet, done) {
      // A clean session's copies are encoded once per message (fanout/deliver-encoded.ts);
      // a persistent session's stay on Aedes's path with the granted-QoS fix.
      if (packet.clean) deliverEncodedOnce(client)
      else deliverAtGrantedQos(client)
      const reason = connectCloseReason(packet)
      if (reason) {
        stats.dropped.badInput++
        return done(new FusionError('BAD_FRAME', reason), false)
      }
      // Aedes replaces an empty id with its own before authenticate() sees the client.
      ;(client as unknown as TaggedClient)[RAW_ID] = packet.clientId
      done(null, true)
    },
    authenticate (client, username, password, done) {
      const tagged = client as unknown as TaggedClient
      const idProblem = clientIdProblem(tagged[RAW_ID] ?? client.id, client.clean)
      if (idProblem) return done(connackError(2, idProblem), null)
      if (username) tagged[USERNAME] = username
      // A will is checked now, with the identity just proved, and refused with CONNACK 5
      // when `admit` would refuse it (Mosquitto 2 does the same): a client must not hold a
      // will it could never publish. It is stamped with that identity, so the will Aedes
      // publishes later, even from its store after a restart, is admitted as this client.
      const accept = (): void => {
        const refusal = checkWill(client)
        if (refusal) return done(connackError(5, refusal), null)
        // A persistent session belongs to the user who made it (issue 13, item 2): another
        // user's CONNECT with its client id is refused, with CONNACK 5, whether it asks for
        // the session (clean=false: it would drain the queue) or not (clean=true: it would
        // wipe the session and cut the owner's live connection, [MQTT-3.1.4-2]).
        const user = tagged[VERIFIED]
        const holder = broker ? liveClient(broker, client.id) : undefined
        if ((holder !== undefined && holder !== client && verifiedUser(holder) !== user) || !owners.mayTake(client.id, user)) {
          stats.stored.takeoverRefused++
          noisy('warn', `mqtt: CONNECT as ${user ?? 'anonymous'} with client id ${client.id} refused: that session belongs to another user`)
          return done(connackError(5, 'this client id is a session of another user'), null)
        }
        // [MQTT-3.1.2-6] a clean session ends the stored one: its owner record goes too.
        const recorded = client.clean ? owners.release(client.id) : owners.claim(client.id, user)
        recorded.then(() => done(null, true), (err: Error) => done(connackError(3, `the session owner could not be stored: ${err.message}`), null))
      }
      const auth = deps.auth
      if (!auth) return accept()
      // MQTT over /mqtt may have proved its user with the upgrade's token.
      const byToken = auth.boundUser(client.req)
      if (byToken !== undefined && (username === undefined || username === byToken)) {
        tagged[USERNAME] = tagged[VERIFIED] = byToken
        return accept()
      }
      if (!username || password === undefined) return done(connackError(5, 'auth is on: log in with a user name and password'), null)
      auth.checkPassword(username, password.toString('utf8'), peerAddress(client)).then((ok) => {
        if (!ok) return done(connackError(4, 'bad user name or password'), null)
        tagged[VERIFIED] = username
        accept()
      }, (err: Error) => done(connackError(3, err.message), null))
    },
    authorizePublish (client: Client | null, packet: PublishPacket, done) {
      const stored = storedWillOf(client, packet)
      if (stored) {
        // A will from the store (a dead node's, or this node's before a restart): admitted
        // as the client that left it, from the identity stamped at CONNECT.
        try {
          if (stored instanceof FusionError) throw stored
          const ok = admit(stored)
          stampOrigin(packet, ok.origin)
          return done(null)
        } catch (err) {
          deps.log('warn', `broker: the stored will of ${(packet as { clientId?: string }).clientId ?? '?'} on ${packet.topic} was refused (${(err as FusionError).code}): dropped`)
          // Aedes retries a refused stored will for ever; dropping it is ours to do.
          dropStoredWill(packet)
          return done(err as Error)
        }
      }
      if (!client) return done(new FusionError('ACL_DENIED', 'a publish without a client is not admitted'))
      // The packet is parsed and nothing else has happened yet: the door has it from here.
      const at = performance.now()
      const tagged = client as unknown as TaggedClient
      const isWill = isClientWill(client, packet)
      // Fixed once CONNECT is through (the door is tagged at handle(), the user proved in
      // authenticate): built once per client, not once per message.
      const who = (tagged[WHO] ??= mqttIdentity(client))
      let origin
      try {
        const ok = admit({
          source: isWill ? 'mqtt-will' : 'mqtt-publish',
          who,
          name: clientUsername(client) ?? who.clientId,
          topic: packet.topic,
          payload: asBuffer(packet.payload),
          // A client's will is its last word, said after it is gone: never rate-limited.
          rate: isWill || !deps.rateGate ? undefined : (tagged[RATE] ??= deps.rateGate())
        })
        origin = ok.origin
      } catch (err) {
        const code = (err as FusionError).code
        if (!isWill && denyAction === 'ignore' && IGNORABLE.has(code)) {
          // MQTT 3.1.1 has no way to refuse one message [MQTT-3.3.5-2]. As Mosquitto and
          // EMQX: acknowledge it and drop it, so a device with one bad topic is not thrown
          // into a reconnect loop (private-stored.ts, dropDeniedPublishes).
          stats.denied.ignored++
          noisy('warn', `mqtt client ${who.clientId}: publish on ${String(packet.topic).slice(0, 200)} refused (${code}): acknowledged and dropped`)
          markDenied(packet)
          return done(null)
        }
        // --deny-action disconnect (or a protocol violation): the connection closes.
        if (!isWill) stats.denied.disconnected++
        return done(err as Error)
      }
      stats.doors[who.door].messagesIn++
      stampOrigin(packet, origin)
      if (packet.properties) stats.latency.received(packet.properties, who.door, at)
      if (packet.qos > 0) holdAcksUntilFlush(client)
      if (durability && packet.qos === 1 && typeof packet.messageId === 'number') durability.gate.expect(client.conn, packet.messageId)
      const go = (): void => {
        const admitted = deps.admitPublish?.(packet)
        if (admitted) return void admitted.then(() => done(null), (err: Error) => done(err))
        done(null)
      }
      // Wills come in bursts (an outage drops thousands of devices in one poll phase):
      // published a slice at a time so the loop keeps serving I/O between slices.
      if (isWill) return willPacer.run(go, client.id)
      go()
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
    // Every delivery to an MQTT client (live, queued, retained) is checked against what
    // the receiver may read now; returning nothing drops it (forward-check.ts).
    authorizeForward (client: Client, packet: AedesPublishPacket) {
      if (!forward.allows(client, packet.topic, mqttIdentity)) {
        stats.stored.forwardDenied++
        return null as unknown as AedesPublishPacket
      }
      stats.doors[clientDoor(client)].messagesOut++
      // The copy is out by the immediate DoorLatency queues after the pass: Aedes (persistent
      // sessions) writes it in an immediate it queues right after this returns; the
      // encode-once path (clean sessions) into a stream corked until an immediate queued
      // at its first write of the pass.
      stats.latency.delivered((packet as { properties?: object }).properties, true)
      return packet
    }
  })
  // Aedes emits 'error' for store failures while queueing for offline sessions; an
  // unhandled 'error' would end the process.
  ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => deps.log('error', 'broker: store error', err))
  // Aedes reports every failed write of a client that went away: one line per 10 s.
  dropDeniedPublishes(broker)
  // A client back under the same id (a takeover, a device after an outage) says "online"
  // from here on: its old will, if still waiting in the pacer, goes first. Registered
  // before the presence listeners (engine/mqtt-presence.ts), which announce the client.
  broker.on('clientReady', (client) => willPacer.flush(client.id))
  broker.on('clientError', (client, err) => noisy('warn', `mqtt client ${client.id} dropped: ${err.message}`))
  broker.on('connectionError', (_client, err) => noisy('warn', `mqtt connection dropped before CONNECT: ${err.message}`))
  trackSubscriptionChanges(broker)
  trackEncodedFilters(broker)
  return broker
}
