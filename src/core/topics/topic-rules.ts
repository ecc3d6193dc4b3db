import { FusionError } from '../errors.js'

/**
 * Topic syntax checks (never routing: Aedes's matcher is the only one in the process).
 * Rules of MQTT 3.1.1 section 4.7 plus our finite length and depth limits.
 */
export interface TopicLimits {
  readonly maxTopicLength: number
  readonly maxTopicLevels: number
}

const MQTT_MAX_BYTES = 65535
// With the u flag a proper surrogate pair is one astral code point, so only lone halves match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

function checkCommon (topic: unknown, what: string, limits: TopicLimits): string {
  if (typeof topic !== 'string') throw new FusionError('BAD_FRAME', `${what} must be a string`)
  // [MQTT-4.7.3-1] topic names and filters are at least one character long
  if (topic.length === 0) throw new FusionError('BAD_TOPIC', `${what} must not be empty`)
  // [MQTT-4.7.3-2] no U+0000
  if (topic.includes('\u0000')) throw new FusionError('BAD_TOPIC', `${what} must not contain NUL`)
  const bytes = Buffer.byteLength(topic, 'utf8')
  // [MQTT-4.7.3-3] at most 65,535 bytes
  if (bytes > MQTT_MAX_BYTES) throw new FusionError('BAD_TOPIC', `${what} is longer than 65,535 bytes`)
  if (bytes > limits.maxTopicLength) {
    throw new FusionError('LIMIT_EXCEEDED', `${what} is ${bytes} bytes; the limit is ${limits.maxTopicLength}`)
  }
  if (levelCount(topic) > limits.maxTopicLevels) {
    throw new FusionError('LIMIT_EXCEEDED', `${what} has more than ${limits.maxTopicLevels} levels`)
  }
  // Lone surrogates cannot be encoded as UTF-8 [MQTT-1.5.3-1].
  if (LONE_SURROGATE.test(topic)) throw new FusionError('BAD_TOPIC', `${what} is not valid UTF-8`)
  return topic
}

function levelCount (topic: string): number {
  let n = 1
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) n++
  return n
}

/** Checks a topic name for PUBLISH: no wildcards [MQTT-3.3.2-2]. Returns it. */
export function checkTopicName (topic: unknown, limits: TopicLimits): string {
  const t = checkCommon(topic, 'topic', limits)
  if (t.includes('+') || t.includes('#')) {
    throw new FusionError('BAD_TOPIC', `topic "${t}" must not contain + or # (wildcards are for filters)`)
  }
  return t
}

/** Checks a subscription filter: `+` fills a whole level, `#` is last and whole [MQTT-4.7.1-2, 4.7.1-3]. */
export function checkTopicFilter (filter: unknown, limits: TopicLimits): string {
  const f = checkCommon(filter, 'filter', limits)
  const levels = f.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      throw new FusionError('BAD_TOPIC', `filter "${f}": # must be the whole last level`)
    }
    if (level.includes('+') && level !== '+') {
      throw new FusionError('BAD_TOPIC', `filter "${f}": + must fill a whole level`)
    }
  }
  return f
}

/** The room of a `chat/<room>` topic, or undefined for any other topic. */
export function chatRoomOf (topic: string): string | undefined {
  if (!topic.startsWith('chat/')) return undefined
  const room = topic.slice(5)
  return room.length > 0 ? room : undefined
}

/** The topic of a chat room. */
export function chatTopic (room: string): string {
  return `chat/${room}`
}

export { wildcardSkipsDollar } from './topic-match.js'
