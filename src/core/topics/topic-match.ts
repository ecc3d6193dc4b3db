/**
 * Matching for the ACL, and only for the ACL: Aedes's router stays the one matcher that
 * routes messages. A rule is an MQTT filter; what it is checked against is either a
 * topic name (a publish) or a subscription filter (a subscribe). Every door reaches
 * these functions through the one Acl, so a rule means the same thing everywhere.
 */

/** An ACL filter split once into its levels, so a check does not split the rule again. */
export type Levels = readonly string[]

export function splitLevels (topic: string): Levels {
  return topic.split('/')
}

// [MQTT-4.7.2-1] a filter that starts with a wildcard does not match topics starting with
// `$`, so `topic readwrite #` grants nothing under `$SYS`: that takes a `$` rule of its own.
function skipsDollar (rule: Levels, target: Levels): boolean {
  const r = rule[0] as string
  const t = target[0] as string
  return (r === '#' || r === '+') && t.charCodeAt(0) === 36 /* $ */
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

/** String form of ruleCovers, for tests and one-off checks. */
export function topicMatches (rule: string, target: string): boolean {
  return ruleCovers(splitLevels(rule), splitLevels(target))
}
