import type { AbstractLevel } from 'abstract-level'
import { answerRetainedWith, levelRetained, levelRetainedTopics, type RetainedPacket } from './internals/index.js'

/**
 * An index of retained topics in front of Aedes's persistence.
 *
 * Both stock persistences answer "retained messages matching this filter" by reading
 * every retained message and testing each one (aedes-persistence-level scans all
 * `retained:` keys). Aedes asks that on every SUBSCRIBE, so with one retained
 * `presence/<id>` per device a connect storm of N devices costs N x N: 2,000 devices
 * took 21 s to connect beside 22,000 retained messages. This walks a trie of topic
 * levels instead, touching only the topics the filter can match.
 */
// `children` is made on a node's first child: most nodes are leaves (one per retained
// topic, such as every client's `presence/<id>`), and an empty Map costs more than the
// node itself.
interface Node { children: Map<string, Node> | undefined, retained: boolean }

const newNode = (): Node => ({ children: undefined, retained: false })

export class TopicTrie {
  readonly #root = newNode()
  #size = 0

  get size (): number { return this.#size }

  add (topic: string): void {
    let node = this.#root
    for (const level of topic.split('/')) {
      let next = node.children?.get(level)
      if (!next) { next = newNode(); (node.children ??= new Map()).set(level, next) }
      node = next
    }
    if (!node.retained) { node.retained = true; this.#size++ }
  }

  remove (topic: string): void {
    const levels = topic.split('/')
    const path: Node[] = [this.#root]
    for (const level of levels) {
      const next = path[path.length - 1]?.children?.get(level)
      if (!next) return
      path.push(next)
    }
    const leaf = path[path.length - 1] as Node
    if (!leaf.retained) return
    leaf.retained = false
    this.#size--
    // Prune empty branches so the trie does not keep topics that are gone.
    for (let i = levels.length; i > 0; i--) {
      const node = path[i] as Node
      if (node.retained || (node.children !== undefined && node.children.size > 0)) break
      const parent = path[i - 1] as Node
      parent.children?.delete(levels[i - 1] as string)
      if (parent.children?.size === 0) parent.children = undefined
    }
  }

  /** Retained topics matching `filter` (MQTT 3.1.1 4.7, empty levels match `+`). */
  * match (filter: string): Generator<string> {
    yield * this.#walk(this.#root, filter.split('/'), 0, [])
  }

  * #walk (node: Node, levels: string[], i: number, prefix: string[]): Generator<string> {
    if (i === levels.length) {
      if (node.retained) yield prefix.join('/')
      return
    }
    const level = levels[i] as string
    // [MQTT-4.7.2-1] a filter starting with a wildcard does not match `$` topics
    const skipDollar = i === 0 && (level === '+' || level === '#')
    if (level === '#') {
      // [MQTT-4.7.1-2] `#` also matches the parent level: `a/#` matches `a`
      if (i > 0 && node.retained) yield prefix.join('/')
      yield * this.#all(node, prefix, skipDollar)
      return
    }
    if (level === '+') {
      if (node.children === undefined) return
      for (const [name, child] of node.children) {
        if (skipDollar && name.charCodeAt(0) === 36) continue
        yield * this.#walk(child, levels, i + 1, [...prefix, name])
      }
      return
    }
    const child = node.children?.get(level)
    if (child) yield * this.#walk(child, levels, i + 1, [...prefix, level])
  }

  * #all (node: Node, prefix: string[], skipDollar: boolean): Generator<string> {
    if (node.children === undefined) return
    for (const [name, child] of node.children) {
      if (skipDollar && name.charCodeAt(0) === 36) continue
      const p = [...prefix, name]
      if (child.retained) yield p.join('/')
      yield * this.#all(child, p, false)
    }
  }
}

/**
 * Puts the index in front of `persistence`. With a LevelDB `db` the index holds topic
 * names only and reads each matching message from the store (the key and encoding of
 * aedes-persistence-level); without one it keeps the packets, as the memory
 * persistence does.
 */
export async function indexRetained (persistence: object, db?: AbstractLevel<any, any, any>): Promise<TopicTrie> {
  const trie = new TopicTrie()
  const packets = new Map<string, RetainedPacket>()
  if (db) {
    for await (const topic of levelRetainedTopics(db)) trie.add(topic)
  }
  const stored = (packet: RetainedPacket): void => {
    if (packet.payload.length === 0) {
      trie.remove(packet.topic)
      packets.delete(packet.topic)
    } else {
      trie.add(packet.topic)
      if (!db) packets.set(packet.topic, { ...packet })
    }
  }
  async function * lookup (patterns: string[]): AsyncGenerator<RetainedPacket> {
    for (const pattern of patterns) {
      for (const topic of trie.match(pattern)) {
        if (!db) {
          const p = packets.get(topic)
          if (p) yield p
          continue
        }
        const p = await levelRetained(db, topic)
        if (p !== undefined) yield p
      }
    }
  }
  answerRetainedWith(persistence, stored, lookup, !db)
  return trie
}
