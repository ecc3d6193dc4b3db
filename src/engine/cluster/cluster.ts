import type { LogFn } from '../../core/types.js'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Aedes } from 'aedes'
import { markBrokerAlive, RedisPersistence } from '../internals/index.js'
import { FusionError } from '../../core/errors.js'
import { RedisHistory, type RedisHistoryOptions } from '../../core/history/redis-history.js'
import { FilterSet } from '../../core/topics/filter-set.js'
import { ClusterEmitter, type GateCounters } from './cluster-emitter.js'
import { PeerSync } from './peer-sync.js'
import { PresenceLedger, type AnnounceOffline } from './presence-ledger.js'
import { RedisLink, redactUrl } from './redis-link.js'


/**
 * How long an MQTT QoS 1 publish waits for Redis before the client is disconnected
 * without its PUBACK (it sends the message again when it reconnects). Bounds how long
 * a publisher is kept waiting, and what it costs to keep it.
 * @default 30000
 */
const HOLD_QOS1_MS = 30_000

/**
 * After Redis is back, how long a node waits for the others to resubscribe before it
 * releases what it held; a node that died meanwhile never answers.
 * @default 3000
 */
const RESYNC_TIMEOUT_MS = 3000

/** MQTT clients waiting for Redis at once, at most; the next ones are refused. @default 10000 */
const MAX_WAITING = 10_000

/**
 * After start, how long a node listens for the others before it says offline for the
 * clients of nodes that are gone (whose ledgers are still in Redis): every live node
 * answers a hello at once. A live node taken for gone repairs it ('reaped').
 * @default 3000
 */
const ORPHANS_AFTER_MS = 3000

export interface ClusterOptions {
  readonly url: string
  /** Filters whose messages the shared history keeps. */
  readonly logged: readonly string[]
  readonly history: RedisHistoryOptions
  readonly log: LogFn
}

/** What /api/health and /api/stats say about the cluster. */
export interface ClusterHealth {
  readonly redis: 'up' | 'down' | 'syncing'
  readonly node: string
  readonly nodes: number
  readonly held: number
  readonly counters: Readonly<GateCounters>
}

/** A packet as the MQTT publish hook sees it. */
interface AdmitPacket { readonly qos: number }

/**
 * One gateway node's share of a cluster: the Redis emitter and persistence for Aedes,
 * the shared history log, and the rules for when Redis is away. Everything here is
 * injected into the single-node parts; nothing else knows it runs in a cluster.
 */
export interface Cluster {
  /** This node's broker id, unique per process start (Aedes keys queued packets by it). */
  readonly nodeId: string
  readonly mq: unknown
  readonly persistence: unknown
  readonly history: RedisHistory
  /** True while Redis answers and every node hears: /api/health says ok. */
  readonly ready: boolean
  health (): ClusterHealth
  /**
   * Before an MQTT publish is accepted: undefined to go on at once; else a promise that
   * settles when Redis is back (QoS 1 waits for it; its PUBACK was never sent).
   */
  admitMqtt (packet: AdmitPacket): Promise<void> | undefined
  /** Before a hub or HTTP publish: throws STORE_FAILED while Redis is away, so the sender hears of it. */
  admitLocal (): void
  /** Calls `fn` each time the node is back in service after an outage. */
  onRecovered (fn: () => void): void
  /** Where the presence tracker records which clients of this node are online. */
  readonly presenceLedger: PresenceLedger
  /**
   * How to say offline for the clients of a node that is gone; set once, after which
   * this node cleans up after dead nodes (and, shortly after start, after those that
   * died while no node was running).
   */
  onNodeGone (announce: AnnounceOffline): void
  /** Tells the broker about the other nodes as soon as they speak (see there). */
  attach (broker: Aedes): void
  close (): Promise<void>
}

/** A broker id for this process: readable, unique, and safe inside `$SYS/<id>/...` topics. */
function newNodeId (): string {
  return `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`
}

/** Connects to Redis (or fails with `--redis URL: cannot connect (...)`) and builds the parts. */
export async function createCluster (opts: ClusterOptions): Promise<Cluster> {
  const { log } = opts
  const nodeId = newNodeId()
  const link = await RedisLink.open(opts.url, `fusion-${nodeId}`, log)
  const history = new RedisHistory(link.db, link.pub, () => link.up, opts.history)
  const emitter = new ClusterEmitter(link, history, new FilterSet(opts.logged))
  const persistence = new RedisPersistence({ conn: link.db })
  const sync = new PeerSync(nodeId, {
    on: (topic, fn, done) => emitter.mq.on(topic, fn as never, done),
    rawEmit: (packet, cb) => emitter.rawEmit(packet, cb)
  })
  const ledger = new PresenceLedger(link.db, nodeId)
  emitter.beforeClose(() => sync.close())
  try {
    await sync.start()
  } catch (err) {
    await link.close()
    throw err
  }

  const waiters = new Set<{ resolve: () => void, reject: (err: Error) => void }>()
  const recovered = new Set<() => void>()
  let generation = 0
  let closed = false
  let announceGone: AnnounceOffline | undefined
  let orphanTimer: NodeJS.Timeout | undefined

  const reap = (id: string, how: string): void => {
    if (!announceGone || closed) return
    ledger.reap(id, sync.peers, announceGone).then((n) => {
      if (n) log('info', `cluster: node ${id} ${how === 'bye' ? 'left' : 'fell silent'}; said offline for ${n} of its client(s)`)
      if (how === 'silent') sync.reaped(id)
    }, (err) => log('warn', `cluster: cleaning up after node ${id} failed`, err))
  }
  sync.onGone((id, how) => reap(id, how))
  // Another node took us for gone and said offline for our clients: say online again.
  sync.onReaped(() => { for (const fn of recovered) fn() })

  const release = (): void => {
    emitter.open()
    for (const w of [...waiters]) w.resolve()
    waiters.clear()
    for (const fn of recovered) {
      try { fn() } catch (err) { log('warn', 'cluster: a recovery step failed', err) }
    }
  }

  link.on('change', (up: boolean) => {
    const mine = ++generation
    sync.setConnected(up)
    if (!up) { emitter.down(); return }
    emitter.syncing()
    const t0 = Date.now()
    sync.barrier(RESYNC_TIMEOUT_MS).then((everyone) => {
      if (closed || mine !== generation || !link.up) return
      const missing = everyone ? '' : ` (no answer from ${sync.peers.length ? 'some of ' + sync.peers.join(', ') : 'this node'} within ${RESYNC_TIMEOUT_MS} ms)`
      log('info', `cluster: resynchronised in ${Date.now() - t0} ms with ${sync.nodes} node(s)${missing}; releasing ${emitter.held} held message(s)`)
      release()
    }, (err) => log('error', 'cluster: resynchronising failed', err))
  })

  const refused = (): FusionError => new FusionError('STORE_FAILED', `Redis (${redactUrl(opts.url)}) is unreachable: the message was not accepted`)

  return {
    nodeId,
    mq: emitter.mq,
    persistence,
    history,
    get ready () { return emitter.state === 'open' },
    health () {
      return { redis: emitter.state === 'open' ? 'up' : emitter.state, node: nodeId, nodes: sync.nodes, held: emitter.held, counters: { ...emitter.counters } }
    },
    admitMqtt (packet) {
      if (emitter.state === 'open' || !packet.qos) return undefined
      if (waiters.size >= MAX_WAITING) return Promise.reject(refused())
      return new Promise<void>((resolve, reject) => {
        const w = {
          resolve: () => { clearTimeout(timer); resolve() },
          reject: (err: Error) => { clearTimeout(timer); waiters.delete(w); reject(err) }
        }
        const timer = setTimeout(() => w.reject(refused()), HOLD_QOS1_MS)
        waiters.add(w)
      })
    },
    admitLocal () {
      if (closed) throw new FusionError('SHUTTING_DOWN', 'the gateway is closing')
      if (emitter.state !== 'open') throw refused()
    },
    onRecovered (fn) { recovered.add(fn) },
    presenceLedger: ledger,
    attach (broker) {
      // Aedes publishes the wills of a node it has not heard a heartbeat from in three
      // intervals, and hears the first heartbeat only a minute after that node starts:
      // a node that joined within the last minute would have its clients' wills
      // published while they are connected. Our nodes speak every 2 s: count that.
      sync.onSeen((id) => { markBrokerAlive(broker, id, Date.now()) })
    },
    onNodeGone (announce) {
      announceGone = announce
      orphanTimer = setTimeout(() => {
        if (closed) return
        ledger.reapOrphans(new Set(sync.peers), announce).then((n) => {
          if (n) log('info', `cluster: said offline for ${n} client(s) of nodes that are gone`)
        }, (err) => log('warn', 'cluster: cleaning up after gone nodes failed', err))
      }, ORPHANS_AFTER_MS)
      orphanTimer.unref()
    },
    async close () {
      if (closed) return
      closed = true
      clearTimeout(orphanTimer)
      for (const w of [...waiters]) w.reject(new FusionError('SHUTTING_DOWN', 'the gateway is closing'))
      // Normally Aedes closed the emitter already; this covers a start that failed half way.
      await new Promise<void>((resolve) => emitter.mq.close(resolve))
      await Promise.race([
        persistence.destroy().catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, 2000).unref())
      ])
      await history.close()
      await link.close()
    }
  }
}
