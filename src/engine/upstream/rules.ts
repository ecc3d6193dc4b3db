import { ruleCovers, splitLevels, type Levels } from '../../core/topics/topic-match.js'

/** Which way a topic rule carries messages, as Mosquitto's `topic` line says it. */
export type Direction = 'in' | 'out' | 'both'

/**
 * One `topic` line: `pattern [in|out|both] [qos] [local-prefix remote-prefix]`.
 * As in Mosquitto, the local side of the rule is `localPrefix + pattern` and the remote
 * side `remotePrefix + pattern`; a message changes prefix as it crosses. An empty pattern
 * makes each prefix a whole topic name.
 */
export interface TopicRule {
  readonly pattern: string
  readonly direction: Direction
  /** Highest QoS the rule carries: a message goes at min(its QoS, this). */
  readonly qos: 0 | 1
  readonly localPrefix: string
  readonly remotePrefix: string
  /** The filter subscribed to on the local broker (out) ... */
  readonly localFilter: string
  /** ... and on the upstream (in). */
  readonly remoteFilter: string
  /** Line of the bridge file, for messages. */
  readonly line: number
}

/** A rule with its filters split once, so matching a message allocates only the topic's levels. */
export interface CompiledRule extends TopicRule {
  readonly localLevels: Levels
  readonly remoteLevels: Levels
}

export function compileRule (r: Omit<TopicRule, 'localFilter' | 'remoteFilter'>): CompiledRule {
  const localFilter = r.localPrefix + r.pattern
  const remoteFilter = r.remotePrefix + r.pattern
  return { ...r, localFilter, remoteFilter, localLevels: splitLevels(localFilter), remoteLevels: splitLevels(remoteFilter) }
}

const carriesOut = (r: TopicRule): boolean => r.direction !== 'in'
const carriesIn = (r: TopicRule): boolean => r.direction !== 'out'

/**
 * The topic rules of one link. A message crosses once per link, by the first rule (in
 * file order) that matches it, so overlapping rules never send it twice.
 */
export class RuleSet {
  readonly rules: readonly CompiledRule[]
  readonly #out: readonly CompiledRule[]
  readonly #in: readonly CompiledRule[]

  constructor (rules: readonly CompiledRule[]) {
    this.rules = rules
    this.#out = rules.filter(carriesOut)
    this.#in = rules.filter(carriesIn)
  }

  /** Distinct local filters the link subscribes to on the local broker. */
  get localFilters (): string[] { return [...new Set(this.#out.map((r) => r.localFilter))] }

  /**
   * The remote filters to subscribe to, with the highest QoS any rule asks for. A filter
   * another one covers is left out: a broker may send one copy per matching
   * subscription (Mosquitto 2 does), and the covering one brings its messages anyway.
   */
  get remoteFilters (): Map<string, 0 | 1> {
    const all = new Map<string, 0 | 1>()
    for (const r of this.#in) all.set(r.remoteFilter, Math.max(all.get(r.remoteFilter) ?? 0, r.qos) as 0 | 1)
    const out = new Map<string, 0 | 1>()
    for (const [f, qos] of all) {
      const levels = splitLevels(f)
      const cover = [...all.keys()].find((g) => g !== f && ruleCovers(splitLevels(g), levels) && !(ruleCovers(levels, splitLevels(g)) && g > f))
      if (cover === undefined) out.set(f, Math.max(out.get(f) ?? 0, qos) as 0 | 1)
      else out.set(cover, Math.max(out.get(cover) ?? all.get(cover) ?? 0, qos) as 0 | 1)
    }
    return out
  }

  /** The first out rule matching a local topic, or undefined. */
  outRule (topic: string): CompiledRule | undefined {
    const levels = splitLevels(topic)
    return this.#out.find((r) => ruleCovers(r.localLevels, levels))
  }

  /** The first in rule matching a remote topic, or undefined. */
  inRule (topic: string): CompiledRule | undefined {
    const levels = splitLevels(topic)
    return this.#in.find((r) => ruleCovers(r.remoteLevels, levels))
  }
}

/** The remote topic of a local one the rule matched. */
export function toRemote (rule: TopicRule, topic: string): string {
  return rule.remotePrefix + topic.slice(rule.localPrefix.length)
}

/** The local topic of a remote one the rule matched. */
export function toLocal (rule: TopicRule, topic: string): string {
  return rule.localPrefix + topic.slice(rule.remotePrefix.length)
}
