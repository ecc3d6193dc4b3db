import type { Aedes, AedesPublishPacket } from 'aedes'
import type { AbstractLevel } from 'abstract-level'
import type { Acl } from '../../core/policy/acl.js'
import type { Admit } from '../../core/admit.js'
import type { LogFn } from '../../core/types.js'
import type { TopicLimits } from '../../core/topics/topic-rules.js'
import { wildcardSkipsDollar } from '../../core/topics/topic-rules.js'
import { readOrigin } from '../../core/origin.js'
import type { PublishRequest } from '../bridge.js'
import { loadUpstreamConfig, type UpstreamConfig } from './config.js'
import { OutboundQueue } from './outbound-queue.js'
import { UpstreamLink, type LinkStats } from './link.js'
import { toRemote } from './rules.js'

export type { LinkStats } from './link.js'

export interface UpstreamDeps {
  /** The bridge file (`--bridge`); undefined: no links, and the result does nothing. */
  readonly file?: string | undefined
  /** Or the parsed links (embedding, tests); wins over `file`. */
  readonly configs?: readonly UpstreamConfig[] | undefined
  readonly broker: Aedes
  /** The gateway's embedded store; each link keeps its queue in a sublevel `upstream-<name>`. */
  readonly db: AbstractLevel<any, any, any>
  readonly acl: Acl
  /** The one admission path (core/admit.ts): what comes in over a link passes it as `bridge-in`. */
  readonly admit: Admit
  readonly limits: TopicLimits & { readonly maxPayload: number, readonly maxPacket: number }
  /** Publishes into the local topic space and resolves once stored (the hub bridge's publish). */
  readonly publish: (req: PublishRequest) => Promise<void>
  readonly log: LogFn
}

export interface UpstreamBridges {
  /** Per-link figures for /api/stats and /metrics; empty without links. */
  stats (): LinkStats[]
  /** For /api/health: each link's state; never makes the gateway unready. */
  health (): Record<string, unknown> | undefined
  /**
   * The disk write of a local QoS 1 message bound upstream, keyed by its origin stamp:
   * the held PUBACK waits for it, so what a device was acknowledged survives kill -9.
   */
  storedFor (stamp: object): Promise<void> | undefined
  /** Ends every link and writes its queue; idempotent. */
  close (): Promise<void>
}

/** Where each link's state is published, retained, as JSON. */
export const STATE_TOPIC = (name: string): string => `$SYS/fusion/upstream/${name}`
/** How often the `$SYS` state is republished while the figures change. */
const STATE_EVERY_MS = 10_000

/**
 * The upstream bridges of the gateway: one link per `connection` of the bridge file,
 * each with its disk queue and its local subscriptions. The one entry point the
 * gateway wires.
 */
export async function createUpstreamBridges (deps: UpstreamDeps): Promise<UpstreamBridges> {
  const configs = deps.configs ?? (deps.file ? loadUpstreamConfig(deps.file) : [])
  const stored = new WeakMap<object, Promise<void>>()
  const links: UpstreamLink[] = []
  const unsubscribes: Array<() => Promise<void>> = []
  let closing: Promise<void> | undefined
  const lastState = new Map<string, string>()

  const publishState = (link: UpstreamLink): void => {
    if (closing) return
    const s = link.stats()
    const body = JSON.stringify({ state: s.state, connected: s.connected, queued: s.queued, messagesIn: s.messagesIn, messagesOut: s.messagesOut, dropped: s.dropped, lastError: s.lastError ?? null, since: s.since })
    if (lastState.get(link.name) === body) return
    lastState.set(link.name, body)
    deps.broker.publish({ cmd: 'publish', topic: STATE_TOPIC(link.name), payload: Buffer.from(body), qos: 0, retain: true, dup: false } as never, () => {})
  }

  const outbound = (link: UpstreamLink, filter: string, packet: AedesPublishPacket): void => {
    const topic = packet.topic
    if (wildcardSkipsDollar(filter, topic)) return
    // No loops: what came in over this link never goes back out over it.
    if (readOrigin(packet as never)?.clientId === link.identity.clientId) return
    // A message crosses a link once, by its first matching rule: the deliver of that
    // rule's filter sends it, the others (overlapping filters) let it pass.
    const rule = link.rules.outRule(topic)
    if (!rule || rule.localFilter !== filter) return
    try {
      deps.acl.checkSubscribe(link.identity, topic)
    } catch {
      // The ACL user bridge:<name> may not read this topic: it stays local (counted as refused).
      link.noteRefused()
      return
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const qos = Math.min(packet.qos, rule.qos) as 0 | 1
    const done = link.send({ topic: toRemote(rule, topic), payload, qos, retain: packet.retain })
    const stamp = (packet as { properties?: object }).properties
    if (done && stamp) {
      const before = stored.get(stamp)
      stored.set(stamp, before ? Promise.all([before, done]).then(() => {}) : done)
    }
  }

  try {
    for (const config of configs) {
      const queue = await OutboundQueue.open(deps.db, config.name, { maxMessages: config.queueMaxMessages, maxBytes: config.queueMaxBytes })
      let link: UpstreamLink | undefined
      link = new UpstreamLink({ config, queue, admit: deps.admit, limits: deps.limits, publish: deps.publish, log: deps.log, onChange: () => { if (link) publishState(link) } })
      links.push(link)
      const l = link
      for (const filter of l.rules.localFilters) {
        const deliver = (packet: AedesPublishPacket, cb: () => void): void => {
          // Called for every matching publish: it must call cb() at once or the router stalls.
          cb()
          outbound(l, filter, packet)
        }
        await new Promise<void>((resolve, reject) => deps.broker.subscribe(filter, deliver as never, ((err?: Error) => (err ? reject(err) : resolve())) as () => void))
        unsubscribes.push(() => new Promise<void>((resolve) => deps.broker.unsubscribe(filter, deliver as never, () => resolve())))
      }
      if (queue.size) deps.log('info', `upstream ${l.name}: ${queue.size} message(s) queued from before, sent once connected`)
    }
  } catch (err) {
    await Promise.allSettled(links.map((l) => l.close()))
    throw err
  }

  for (const link of links) {
    publishState(link)
    link.start()
  }
  const ticker = links.length ? setInterval(() => { for (const l of links) publishState(l) }, STATE_EVERY_MS) : undefined
  ticker?.unref()

  return {
    stats: () => links.map((l) => l.stats()),
    health () {
      if (!links.length) return undefined
      return Object.fromEntries(links.map((l) => {
        const s = l.stats()
        return [l.name, { state: s.state, connected: s.connected, queued: s.queued, ...(s.lastError ? { lastError: s.lastError } : {}) }]
      }))
    },
    storedFor: (stamp) => stored.get(stamp),
    close () {
      closing ??= (async () => {
        clearInterval(ticker)
        await Promise.allSettled(unsubscribes.map((u) => u()))
        await Promise.allSettled(links.map((l) => l.close()))
      })()
      return closing
    }
  }
}
