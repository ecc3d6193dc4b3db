import qlobber from 'qlobber'
import { topicMatches, wildcardSkipsDollar } from './topic-match.js'

/**
 * A set of MQTT filters that answers "does this topic match any of them?" in one trie
 * walk (the history's logged topics, asked for every message). Built on qlobber with
 * the options Aedes's router and persistence use; qlobber knows nothing of the `$` rule,
 * so a `$` topic is checked against each filter with `topicMatches`.
 */
export class FilterSet {
  readonly #q: InstanceType<typeof qlobber.QlobberTrue>
  readonly #filters = new Set<string>()

  constructor (filters: Iterable<string> = []) {
    this.#q = new qlobber.QlobberTrue({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
    for (const f of filters) this.add(f)
  }

  add (filter: string): void {
    if (this.#filters.has(filter)) return
    this.#filters.add(filter)
    this.#q.add(filter)
  }

  get filters (): string[] { return [...this.#filters] }

  /** True when `topic` matches a filter, with [MQTT-4.7.2-1]: wildcards at the start never match `$` topics. */
  matches (topic: string): boolean {
    if (!this.#q.test(topic)) return false
    if (topic.charCodeAt(0) !== 36) return true
    for (const f of this.#filters) if (!wildcardSkipsDollar(f, topic) && topicMatches(f, topic)) return true
    return false
  }
}
