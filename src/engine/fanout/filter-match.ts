/**
 * MQTT topic matching of one filter against one topic name without splitting either
 * (no allocation): the granted-QoS check runs once per delivered copy.
 *
 * Same rules as Aedes's router: `+` matches exactly one level (an empty one too),
 * `#` matches its level and every level below, and its parent level [MQTT-4.7.1-2]; a
 * filter starting with a wildcard does not match a topic starting with `$`
 * [MQTT-4.7.2-1]. The filter is one Aedes accepted (valid per [MQTT-4.7.1]).
 */
export function filterMatches (filter: string, topic: string): boolean {
  if (filter === topic) return true
  const f0 = filter.charCodeAt(0)
  if ((f0 === 35 /* # */ || f0 === 43 /* + */) && topic.charCodeAt(0) === 36 /* $ */) return false
  const FL = filter.length
  const TL = topic.length
  let f = 0
  let t = 0
  for (;;) {
    let fe = filter.indexOf('/', f)
    if (fe < 0) fe = FL
    const oneChar = fe - f === 1
    const c = filter.charCodeAt(f)
    // `#` covers this level, the rest, and a topic that ended just above it.
    if (oneChar && c === 35) return true
    // The topic has no level left here: only a last `#` would have matched.
    if (t > TL) return false
    let te = topic.indexOf('/', t)
    if (te < 0) te = TL
    if (!(oneChar && c === 43)) {
      if (fe - f !== te - t) return false
      for (let i = 0; i < fe - f; i++) if (filter.charCodeAt(f + i) !== topic.charCodeAt(t + i)) return false
    }
    if (fe === FL) return te === TL
    f = fe + 1
    t = te + 1
  }
}
