import type { Aedes } from 'aedes'
import type { Lifecycle } from '../core/lifecycle.js'
import type { GatewayOptions } from '../core/options.js'
import type { GatewayPolicy } from '../core/policy/policy.js'
import type { Stats } from '../core/stats.js'
import type { LogFn } from '../core/types.js'
import { HistoryLog } from '../core/history/history-log.js'
import type { HistoryStore } from '../core/history/history-store.js'
import { loggedTopics } from '../core/history/logged-topics.js'
import { ReadGate } from '../core/history/history-page.js'
import { openStore, type Store } from '../core/store/open-store.js'
import { Bridge, bothStored } from './bridge.js'
import { createCluster, type Cluster } from './cluster/cluster.js'
import { createBroker, type Durability } from './create-broker.js'
import { PubackGate } from './durable-puback.js'
import { watchMqttPresence } from './mqtt-presence.js'
import { PresenceTracker } from './presence.js'
import { createUpstreamBridges, type UpstreamBridges } from './upstream/upstream.js'
import { SessionOwners } from './session-owners.js'
import { ForwardCheck } from './forward-check.js'
import { capStoredState } from './stored-caps.js'
import { prunePresence } from './presence-prune.js'
import { registerStoredSessions } from './reconcile.js'

/** The topic space: the store, the history, Aedes and its adaptations, the hub's bridge, presence. */
export interface Engine {
  readonly store: Store
  readonly history: HistoryStore
  readonly broker: Aedes
  readonly bridge: Bridge
  readonly presence: PresenceTracker
  readonly cluster: Cluster | undefined
  /** The gateway-wide limit on parallel history reads (replays, history frames, /api/history). */
  readonly reads: ReadGate
  /** The links to upstream brokers (--bridge); does nothing without a bridge file. */
  readonly upstream: UpstreamBridges
}

/** Builds the engine, registering each part's stop in `life` as it is built. */
export async function createEngine (options: Readonly<GatewayOptions>, policy: GatewayPolicy, stats: Stats, log: LogFn, life: Lifecycle): Promise<Engine> {
  // With --redis everything kept lives in Redis; the embedded store stays empty.
  const store = await openStore(options.redis ? { dataDir: options.dataDir, memory: true } : options)
  life.add('store', () => store.close())
  const logged = loggedTopics(options.historyTopics, options)
  const historyOpts = { maxPerTopic: Math.max(options.historyMaxPerTopic, options.historyLimit), maxAgeMs: options.historyMaxAgeMs }
  const cluster = options.redis ? await createCluster({ url: options.redis, logged, history: historyOpts, log }) : undefined
  if (cluster) life.add('cluster', () => cluster.close())
  const history: HistoryStore = cluster
    ? cluster.history
    : await HistoryLog.open(store.db, { ...historyOpts, maxTopics: options.historyMaxTopics, onTopicRefused: () => { stats.stored.historyTopicsRefused++ } })
  life.add('history', () => history.close())
  const durability: Durability | undefined = options.holdPuback ? { gate: new PubackGate(), storedFor: () => undefined } : undefined
  // Session owners live in the embedded store (a restart keeps them). On a cluster they
  // are per node, in memory: Redis holds the sessions, not their owners (docs/SECURITY.md).
  const owners = await SessionOwners.open(options.redis ? undefined : store.db)
  const forward = new ForwardCheck(policy.acl)
  const broker = await createBroker({
    owners, forward, denyAction: options.denyAction === 'disconnect' ? 'disconnect' : 'ignore',
    store, acl: policy.acl, admit: policy.admit, stats, limits: options, log, durability, auth: policy.auth, rateGate: policy.rateGate,
    ...(cluster ? { id: cluster.nodeId, mq: cluster.mq, persistence: cluster.persistence, admitPublish: (p: { qos: number }) => cluster.admitMqtt(p) } : {})
  })
  life.add('broker', () => new Promise<void>((resolve) => broker.close(() => resolve())))
  registerStoredSessions(broker, { owners, forward, stats, log })
  await capStoredState(broker, { maxRetained: options.maxRetained, maxRetainedBytes: options.maxRetainedBytes, maxQueued: options.maxQueued }, stats, log)
  cluster?.attach(broker)
  const bridge = new Bridge(broker, history, logged, { admit: cluster ? () => cluster.admitLocal() : undefined, latency: stats.latency })
  life.add('bridge', () => bridge.close())
  const upstream = await createUpstreamBridges({ file: options.bridge, broker, db: store.db, acl: policy.acl, admit: policy.admit, limits: options, publish: (r) => bridge.publish(r), log })
  life.add('upstream', () => upstream.close())
  // A device's QoS 1 PUBACK, and a /ws or HTTP ack, wait for the upstream queue too when an out rule took the message.
  if (durability) durability.storedFor = (stamp) => bothStored(bridge.storedFor(stamp), upstream.storedFor(stamp))
  bridge.alsoStored = (stamp) => upstream.storedFor(stamp)
  // Logged topics are kept even when no /ws client listens.
  await bridge.startLogging()
  const presence = new PresenceTracker(bridge, { ledger: cluster?.presenceLedger })
  await presence.start()
  if (!options.redis) await presence.clearStale()
  cluster?.onRecovered(() => { void presence.reannounce() })
  cluster?.onNodeGone((clientId, name, via) => presence.announce(clientId, 'offline', name, via))
  life.add('presence watch', watchMqttPresence(broker, presence))
  life.add('presence prune', await prunePresence(bridge, presence, options.presenceOfflineKeep, stats))
  return { store, history, broker, bridge, presence, cluster, reads: new ReadGate(), upstream }
}
