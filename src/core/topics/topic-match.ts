/**
 * The one topic-matching module (MQTT 3.1.1 section 4.7). Aedes's router stays the one
 * matcher that routes messages; everything else that asks "does this filter match"
 * asks here: the ACL (a rule against a topic name or a subscription filter), delivery
 * QoS, the history's logged topics (filter-set.ts) and the retained index's trie
 * (engine/retained-index.ts). The faster structures are checked against `topicMatches`
 * by one shared table of cases (test/unit/core/topics/match-cases.ts).
 */

/** An ACL filter split once into its levels, so a check does not split the rule again. */
export type Levels = readonly string[]

export function splitLevels (topic: string): Levels {
  return topic.split('/')
}

/**
 * [MQTT-4.7.2-1] "The Server MUST NOT match Topic Filters starting with a wildcard
 * character (# or +) with Topic Names beginning with a $ character": so `topic readwrite
 * #` grants nothing under `$SYS`, and a `#` subscriber never sees `$SYS` heartbeats.
 */
export function wildcardSkipsDollar (filter: string, topic: string): boolean {
  const c = filter.charCodeAt(0)
  return (c === 35 /* # */ || c === 43 /* + */) && topic.charCodeAt(0) === 36 /* $ */
}

function skipsDollar (rule: Levels, target: Levels): boolean {
  return wildcardSkipsDollar(rule[0] as string, target[0] as string)
}

/**
 * True when every topic that `target` can name is matched by `rule`. For a topic name
 * this is plain MQTT matching; for a filter it is containment: `a/+` covers `a/b` and
 * `a/+`, but not `a/#`, so a subscription never reaches further than the rule allows.
 */
export function ruleCovers (rule: Levels, target: Levels): boolean {
  if (skipsDollar(rule, target)) return false
  for (let i = 0; i < rule.length; i++) {
    const level = rule[i] as string
    // [MQTT-4.7.1-2] `#` matches its parent level too: `a/#` covers `a`.
    if (level === '#') return true
    if (i >= target.length) return false
    const t = target[i] as string
    if (level === '+') {
      if (t === '#') return false
      continue
    }
    // A `+` or `#` in the target only falls under a wildcard of the rule.
    if (level !== t) return false
  }
  return rule.length === target.length
}

/**
 * True when at least one topic is matched by both filters. A deny rule that overlaps a
 * subscription refuses it: the subscriber could otherwise receive the denied topic.
 */
export function filtersOverlap (a: Levels, b: Levels): boolean {
  if (skipsDollar(a, b) || skipsDollar(b, a)) return false
  const n = Math.max(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a[i]
    const y = b[i]
    if (x === '#' || y === '#') return true
    if (x === undefined || y === undefined) return false
    if (x === '+' || y === '+') continue
    if (x !== y) return false
  }
  return true
}

/**
 * True when `filter` matches `topic` (a topic name), or, for a filter `target`, covers it.
 * The reference every faster structure is tested against.
 */
export function topicMatches (rule: string, target: string): boolean {
  return ruleCovers(splitLevels(rule), splitLevels(target))
}
