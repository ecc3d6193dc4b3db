import type { Client } from 'aedes'
import type { Acl, Identity } from '../core/policy/acl.js'

const CACHE = Symbol('fusion.forwardCache')

// Topics remembered per client. A client reading many distinct topics (a device fleet's
// `sensors/#`) cycles its cache: it is cleared when full, so it costs at most this many
// entries per connection, and an uncached delivery costs one ACL walk.
const PER_CLIENT = 256

interface Cached { generation: number, topics: Map<string, boolean> }

/**
 * Checks every delivery to an MQTT client against its read rights (issue 13, item 2):
 * live messages, a persistent session's queue when it comes back, retained messages on
 * SUBSCRIBE. Aedes calls authorizeForward for each of them (lib/client.js deliver0 and
 * deliverQoS, handlers/connect.js emptyQueue); a subscription granted once is not proof
 * of the right to read now (the rules may have changed, or the session was another
 * user's). A topic name is a filter without wildcards, so the read right on a topic is
 * the ACL's subscribe check on it.
 */
export class ForwardCheck {
  readonly #acl: Acl
  #generation = 0

  constructor (acl: Acl) { this.#acl = acl }

  /** Forgets every cached answer: call after the rules changed. */
  reset (): void { this.#generation++ }

  /** True when `client` (as `identify` names it) may read `topic` now. */
  allows (client: Client, topic: string, identify: (client: Client) => Identity): boolean {
    const holder = client as unknown as { [CACHE]?: Cached }
    let cache = holder[CACHE]
    if (!cache || cache.generation !== this.#generation) cache = holder[CACHE] = { generation: this.#generation, topics: new Map() }
    const known = cache.topics.get(topic)
    if (known !== undefined) return known
    let ok = true
    try { this.#acl.checkSubscribe(identify(client), topic) } catch { ok = false }
    if (cache.topics.size >= PER_CLIENT) cache.topics.clear()
    cache.topics.set(topic, ok)
    return ok
  }
}
