/**
 * THE ONE ROOM FOR LIBRARY INTERNALS.
 *
 * Nothing else under src/ reads or replaces a private part of Aedes, ws, mqtt-packet,
 * aedes-persistence(-level, -redis) or mqemitter-redis: it calls the named functions
 * exported here (test/unit/engine/internals/no-private-access.test.ts fails otherwise).
 * Each patch is listed below with what it touches, why, the upstream issue, and the
 * libraries it depends on; WRITTEN_FOR (versions.ts) holds the exact version of each
 * library the patches were written against, and the gateway refuses to start on any
 * other (UNTESTED_LIBRARY, overridden by --allow-untested-libs).
 *
 * | id | touches | why | upstream | written for |
 * | --- | --- | --- | --- | --- |
 * | granted-qos | Client `deliver0`/`deliverQoS` replaced; `subscriptions`, `duplicates` read; an exact subscription's `qos` raised between two immediates | deliver at min(published, highest granted QoS) through wildcard and overlapping subscriptions [MQTT-3.3.5-1] | moscajs/aedes#1074 | aedes 1.2.0 |
 * | granted-qos-queue | persistence `outgoingEnqueueCombi` wrapped | an offline session queues one copy at the granted QoS, not one per matching subscription at the published QoS | moscajs/aedes#1074 | aedes 1.2.0, aedes-persistence 11.0.0, aedes-persistence-level 9.2.0, aedes-persistence-redis 12.0.0 |
 * | held-puback | mqtt-packet `writeToStream` replaced process-wide | a QoS 1 PUBACK waits until the message is stored (Aedes writes it first) | none filed | mqtt-packet 9.0.2, aedes 1.2.0 |
 * | retained-index | persistence `storeRetained`, `createRetainedStream(Combi)` replaced; aedes-persistence-level's `retained:<topic>` keys and msgpack values read | a SUBSCRIBE walks a trie instead of scanning every retained message; with --memory the index holds the only copy of each retained packet (the persistence's own Map is not filled) | moscajs/aedes#122 (one lookup per filter) | aedes 1.2.0, aedes-persistence 11.0.0, aedes-persistence-level 9.2.0 |
 * | client-will | Client `_will` (during authenticate) and `will` read | check a will at CONNECT with the proved identity; tell the client's own will from a stored one | none filed | aedes 1.2.0 |
 * | clean-disconnect | Client `_disconnected` read | MQTT presence: speak for a client only when it did not leave its own will | none filed | aedes 1.2.0 |
 * | client-subscriptions | Client `subscriptions` read | reconcile after a reload; granted QoS | none filed | aedes 1.2.0 |
 * | broker-clients | Aedes `clients` read | reconcile after a reload: every connected client | none filed | aedes 1.2.0 |
 * | broker-persistence | Aedes `persistence` read | drop a refused stored will; remove revoked subscriptions of a persistent session; read retained messages for /ws | none filed | aedes 1.2.0 |
 * | broker-heartbeats | Aedes `brokers` written | a cluster node that joined within the last minute must not have its clients' wills published | none filed | aedes 1.2.0 |
 * | redis-streams | aedes-persistence-redis stream methods wrapped in `Readable.from` | Aedes pipes them; the async generators crash a cluster node on SUBSCRIBE | none filed | aedes 1.2.0, aedes-persistence-redis 12.0.0 |
 * | client-connack | Client `connackSent` read | until the CONNACK is written Aedes queues what follows CONNECT and drops the client at 42 packets; the read gate holds the rest in the socket until then (MQTT 3.1.1 section 3.1.4 lets a client send at once) | none filed | aedes 1.2.0 |
 * | parser-in-turn | Client `_parser.parse` wrapped | Aedes re-enters mqtt-packet's parser from a packet handler (nextBatch); the parser is not re-entrant and loses the second buffer's packets | none filed | aedes 1.2.0, mqtt-packet 9.0.2 |
 * | stream-io | the connection's `read` and `write` wrapped | Aedes has no maximum packet size (a declared 256 MB packet is buffered) and waits for `drain` on a reader that stopped; on Node 26 `read()` returns one chunk and Aedes's nested read re-enters mqtt-packet's parser, which loses packets (readWholeBuffer) | moscajs/aedes#831 (maximum packet size); none filed (Node 26) | aedes 1.2.0, mqtt-packet 9.0.2 |
 * | ws-socket | ws `_socket` read and corked | frames of one tick leave in one system call | none filed | ws 8.23.0 |
 * | ws-stream-frames | createWebSocketStream's `_write` replaced, `_writev` added, frames written to `_socket` | the small writes of one MQTT packet leave as one frame, not one frame each; the subscribers of one fan-out write the same frame object (built once, as MQTT/TCP writes one buffer to all) | none filed | ws 8.23.0 |
 * | mqttjs-stream | MQTT.js client `streamBuilder` wrapped, its `stream`'s `read` wrapped and `writableLength` read | an upstream link (engine/upstream) must not buffer a declared 256 MB packet (MQTT.js has no maximum for 3.1.1), and sheds QoS 0 when its socket is backed up | none filed | mqtt 5.16.0 |
 * | emitter-envelope | mqemitter-redis's `{id, msg}` msgpack envelope written; its `_close` called | cluster messages resent after a broken connection keep their id, so a node that got them drops the copy | none filed | mqemitter-redis 7.2.1 |
 * | encode-once-deliver | Client `deliver0`/`deliverQoS` replaced for clean sessions (read by handlers/subscribe.js `addSubs` and `sendRetained`) | one PUBLISH encoding per message written to every subscriber, instead of two `Packet` copies, a `setImmediate` and an mqtt-packet serialisation per subscriber | none filed | aedes 1.2.0 |
 * | encode-once-conn | Client `conn` read and corked until the end of the turn; `connecting`/`connected`/`errored` read | write where and when lib/write.js would; one `writev` per client per turn | none filed | aedes 1.2.0 |
 * | encode-once-ids | Client `_nextId` read and advanced | QoS 1/2 packet ids from the counter Aedes's QoSPacket uses (1..65535, wrapping to 1) | none filed | aedes 1.2.0 |
 * | encode-once-dedupe | Client `duplicates` read and written | a message reaching the client through overlapping subscriptions goes out once (lib/client.js `dedupe`) | none filed | aedes 1.2.0 |
 * | encode-once-drain | Client `waitForDrain()` and `_onError()` called; the broker's `authorizeForward` hook called once per copy | back-pressure, a write to a closed client and the per-copy hook as deliver0/deliverQoS do | none filed | aedes 1.2.0 |
 * | encode-once-acks | persistence `outgoingClearMessageId` wrapped (handlers/puback.js, PUBACK and PUBCOMP) | the ack of a copy sent unstored to a clean session is not looked up in the store (on disk: a LevelDB read per PUBACK, 22 % of an on-disk QoS 1 fan-in) | none filed | aedes 1.2.0, aedes-persistence 11.0.0, aedes-persistence-level 9.2.0, aedes-persistence-redis 12.0.0 |
 * | deny-ignore | Aedes instance `publish` wrapped; a refused PUBLISH marked | --deny-action ignore: Aedes's handler sends PUBACK/PUBREC, then the marked packet is dropped before anything is retained, queued or routed (an authorizePublish error always closes) | none filed | aedes 1.2.0 |
 * | stored-caps | persistence `storeRetained` and `outgoingEnqueueCombi` wrapped (outermost); `outgoingStream`, `outgoingUpdate` (message id 0), `outgoingClearMessageId` used to drop the oldest queued message | retained caps (count, bytes); per-session offline queue cap, oldest dropped | none filed | aedes 1.2.0, aedes-persistence 11.0.0, aedes-persistence-level 9.2.0, aedes-persistence-redis 12.0.0 |
 * | session-holder | Aedes `clients` and `persistence` read for one id / offline sessions | session ownership (CONNACK 5 to another user); a reload revokes stored subscriptions of offline sessions | none filed | aedes 1.2.0 |
 * | level-del-will | aedes-persistence-level's `delWill` replaced by a delete of its `will:<id>` key | it read the will back (a LevelDB get) only to return it, and nothing uses the value: a read per CONNECT and per published will; 10,000 wills published at once made 10,000 reads in a few turns | none filed | aedes 1.2.0, aedes-persistence-level 9.2.0 |
 */
import type { LibraryName } from './versions.js'

/** One patch of the table above, for the tests and the report. */
export interface Patch {
  readonly id: string
  readonly libraries: readonly LibraryName[]
  readonly upstream: string
  /** The modules that use it (paths under src/). */
  readonly usedBy: readonly string[]
}

export const PATCHES: readonly Patch[] = Object.freeze([
  { id: 'granted-qos', libraries: ['aedes'], upstream: 'moscajs/aedes#1074', usedBy: ['engine/overlap-qos.ts'] },
  { id: 'granted-qos-queue', libraries: ['aedes', 'aedes-persistence', 'aedes-persistence-level', 'aedes-persistence-redis'], upstream: 'moscajs/aedes#1074', usedBy: ['engine/overlap-qos.ts'] },
  { id: 'held-puback', libraries: ['mqtt-packet', 'aedes'], upstream: 'none filed', usedBy: ['engine/durable-puback.ts'] },
  { id: 'retained-index', libraries: ['aedes', 'aedes-persistence', 'aedes-persistence-level'], upstream: 'moscajs/aedes#122', usedBy: ['engine/retained-index.ts'] },
  { id: 'client-will', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/create-broker.ts', 'engine/mqtt-presence.ts'] },
  { id: 'clean-disconnect', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/mqtt-presence.ts'] },
  { id: 'client-subscriptions', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/reconcile.ts', 'engine/overlap-qos.ts'] },
  { id: 'broker-clients', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/reconcile.ts'] },
  { id: 'broker-persistence', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/create-broker.ts', 'engine/reconcile.ts', 'engine/bridge.ts'] },
  { id: 'broker-heartbeats', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/cluster/cluster.ts'] },
  { id: 'redis-streams', libraries: ['aedes', 'aedes-persistence-redis'], upstream: 'none filed', usedBy: ['engine/cluster/cluster.ts'] },
  { id: 'client-connack', libraries: ['aedes'], upstream: 'none filed', usedBy: ['doors/mqtt-tcp/mqtt-guard.ts'] },
  { id: 'parser-in-turn', libraries: ['aedes', 'mqtt-packet'], upstream: 'none filed', usedBy: ['doors/mqtt-tcp/mqtt-tcp.ts'] },
  { id: 'stream-io', libraries: ['aedes', 'mqtt-packet'], upstream: 'moscajs/aedes#831', usedBy: ['doors/mqtt-tcp/mqtt-guard.ts', 'doors/mqtt-tcp/send-queue.ts'] },
  { id: 'ws-socket', libraries: ['ws'], upstream: 'none filed', usedBy: ['doors/ws-cork.ts'] },
  { id: 'ws-stream-frames', libraries: ['ws'], upstream: 'none filed', usedBy: ['doors/mqtt-ws/ws-duplex.ts'] },
  { id: 'encode-once-deliver', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/fanout/deliver-encoded.ts'] },
  { id: 'encode-once-conn', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/fanout/deliver-encoded.ts'] },
  { id: 'encode-once-ids', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/fanout/deliver-encoded.ts'] },
  { id: 'encode-once-dedupe', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/fanout/deliver-encoded.ts'] },
  { id: 'encode-once-drain', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/fanout/deliver-encoded.ts'] },
  { id: 'encode-once-acks', libraries: ['aedes', 'aedes-persistence', 'aedes-persistence-level', 'aedes-persistence-redis'], upstream: 'none filed', usedBy: ['engine/create-broker.ts'] },
  { id: 'mqttjs-stream', libraries: ['mqtt'], upstream: 'none filed', usedBy: ['engine/upstream/link.ts'] },
  { id: 'deny-ignore', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/create-broker.ts'] },
  { id: 'stored-caps', libraries: ['aedes', 'aedes-persistence', 'aedes-persistence-level', 'aedes-persistence-redis'], upstream: 'none filed', usedBy: ['engine/stored-caps.ts'] },
  { id: 'session-holder', libraries: ['aedes'], upstream: 'none filed', usedBy: ['engine/create-broker.ts', 'engine/reconcile.ts', 'engine/stored-caps.ts'] },
  { id: 'emitter-envelope', libraries: ['mqemitter-redis'], upstream: 'none filed', usedBy: ['engine/cluster/cluster-emitter.ts'] },
  { id: 'level-del-will', libraries: ['aedes', 'aedes-persistence-level'], upstream: 'none filed', usedBy: ['engine/create-broker.ts'] }
] satisfies Patch[])

export {
  brokerClients, brokerPersistence, clientSubscriptions, deliverAtQos, disconnectedCleanly, isClientWill,
  connackWritten, markBrokerAlive, parseOneBufferAtATime, pendingWill, willTopic,
  type BrokerPersistence, type Delivery, type GrantedQos, type HeldSubscription
} from './aedes.js'
export { gatePacketWrites, numbersUncached, ungatePacketWrites, packetWritesGated, writeNumbersUncached, type PacketGate, type PacketWrite } from './mqtt-packet.js'
export {
  answerRetainedWith, createEmbeddedPersistence, levelRetained, levelRetainedTopics, RedisPersistence, splitOfflineQueue,
  type OfflineSub, type RetainedPacket
} from './persistence.js'
export { afterEachWrite, gateReads, readWholeBuffer, type AfterWrite, type ReadGate } from './streams.js'
export {
  afterEnqueue, allRetained, countQueued, dropDeniedPublishes, dropOldestQueued, guardRetained, liveClient, markDenied, persistenceOf,
  type RetainedLike, type RetainedVerdict, type StoredPersistence
} from './stored.js'
export { sendWritesAsOneFrame, wsSocket } from './ws.js'
export { emitterEnvelope, finishEmitterClose } from './mqemitter-redis.js'
export {
  authorizeForward, clientConn, clientErrored, clientWritable, failClient, firstCopy, nextPacketId, replaceDeliver,
  skipAckLookups, waitForDrain, type AedesDelivery, type Deliver
} from './encode-once.js'
export { clientUnsentBytes, inspectClientReads } from './mqtt-js.js'
export { checkLibraryVersions, installedLibraries, libraryMismatches, WRITTEN_FOR, type Installed, type LibraryName } from './versions.js'
