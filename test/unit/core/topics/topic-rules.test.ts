// Topic names and filters follow MQTT 3.1.1 section 4.7 plus our finite limits.
import t from 'tap'
import { FusionError } from '../../../../src/core/errors.js'
import { DEFAULTS } from '../../../../src/core/options.js'
import {
  checkTopicFilter, checkTopicName, chatRoomOf, chatTopic, wildcardSkipsDollar, type TopicLimits
} from '../../../../src/core/topics/topic-rules.js'

const limits: TopicLimits = { maxTopicLength: DEFAULTS.maxTopicLength, maxTopicLevels: DEFAULTS.maxTopicLevels }
const wide: TopicLimits = { maxTopicLength: 65535, maxTopicLevels: 100 }

/** The code a check throws, or 'ok' when it accepts. */
function verdict (fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    if (err instanceof FusionError) return err.code
    throw err
  }
}

t.test('topic names (publish)', async (t) => {
  const cases: Array<[unknown, string]> = [
    ['chat/lobby', 'ok'],
    ['sensors/k1/temp', 'ok'],
    ['a', 'ok'],
    ['/', 'ok'], // two empty levels are legal [MQTT-4.7.1-1 note]
    ['/leading', 'ok'],
    ['trailing/', 'ok'],
    ['a//b', 'ok'],
    [' spaced topic ', 'ok'],
    ['$SYS/broker/uptime', 'ok'], // syntax only: the ACL refuses it, not the syntax check
    ['温度/센서/🌡', 'ok'],
    ['', 'BAD_TOPIC'],
    ['a/+/b', 'BAD_TOPIC'],
    ['+', 'BAD_TOPIC'],
    ['#', 'BAD_TOPIC'],
    ['a/#', 'BAD_TOPIC'],
    ['a+b', 'BAD_TOPIC'],
    ['a#', 'BAD_TOPIC'],
    ['a\u0000b', 'BAD_TOPIC'],
    ['\u0000', 'BAD_TOPIC'],
    ['bad\uD800', 'BAD_TOPIC'], // lone high surrogate
    ['\uDC00bad', 'BAD_TOPIC'], // lone low surrogate
    [42, 'BAD_FRAME'],
    [undefined, 'BAD_FRAME'],
    [null, 'BAD_FRAME'],
    [['a'], 'BAD_FRAME']
  ]
  for (const [topic, want] of cases) {
    t.equal(verdict(() => checkTopicName(topic, limits)), want, `name ${JSON.stringify(topic)} -> ${want}`)
  }
  t.equal(checkTopicName('x/y', limits), 'x/y', 'returns the topic it accepts')
})

t.test('topic filters (subscribe)', async (t) => {
  const cases: Array<[unknown, string]> = [
    ['chat/lobby', 'ok'],
    ['#', 'ok'],
    ['+', 'ok'],
    ['+/+', 'ok'],
    ['/+', 'ok'],
    ['+/', 'ok'],
    ['a/+/b', 'ok'],
    ['a/#', 'ok'],
    ['+/#', 'ok'],
    ['a/+/#', 'ok'],
    ['$SYS/#', 'ok'],
    ['', 'BAD_TOPIC'],
    ['a/#/b', 'BAD_TOPIC'], // # must be last [MQTT-4.7.1-2]
    ['#/a', 'BAD_TOPIC'],
    ['a#', 'BAD_TOPIC'], // # must fill its level
    ['a/b#', 'BAD_TOPIC'],
    ['##', 'BAD_TOPIC'],
    ['a+', 'BAD_TOPIC'], // + must fill its level [MQTT-4.7.1-3]
    ['a/+b/c', 'BAD_TOPIC'],
    ['++', 'BAD_TOPIC'],
    ['a/b\u0000', 'BAD_TOPIC'],
    ['a/\uD83D', 'BAD_TOPIC'],
    [7, 'BAD_FRAME'],
    [{}, 'BAD_FRAME']
  ]
  for (const [filter, want] of cases) {
    t.equal(verdict(() => checkTopicFilter(filter, limits)), want, `filter ${JSON.stringify(filter)} -> ${want}`)
  }
  t.equal(checkTopicFilter('a/+', limits), 'a/+', 'returns the filter it accepts')
})

t.test('a proper surrogate pair (an astral character) is valid UTF-8', async (t) => {
  t.equal(verdict(() => checkTopicName('emoji/😀', limits)), 'ok')
  t.equal(verdict(() => checkTopicFilter('emoji/😀/+', limits)), 'ok')
})

t.test('length: our limit is LIMIT_EXCEEDED, the MQTT ceiling is BAD_TOPIC', async (t) => {
  const atLimit = 'a'.repeat(limits.maxTopicLength)
  t.equal(verdict(() => checkTopicName(atLimit, limits)), 'ok', `${limits.maxTopicLength} bytes is allowed`)
  t.equal(verdict(() => checkTopicName(atLimit + 'b', limits)), 'LIMIT_EXCEEDED', 'one byte over our limit')
  t.equal(verdict(() => checkTopicFilter(atLimit + 'b', limits)), 'LIMIT_EXCEEDED', 'filters have the same limit')
  // Length is counted in UTF-8 bytes, not UTF-16 units: 'é' is 2 bytes.
  const small: TopicLimits = { maxTopicLength: 10, maxTopicLevels: 32 }
  t.equal(verdict(() => checkTopicName('é'.repeat(5), small)), 'ok', '10 bytes')
  t.equal(verdict(() => checkTopicName('é'.repeat(5) + 'x', small)), 'LIMIT_EXCEEDED', '11 bytes in 6 characters')
  t.equal(verdict(() => checkTopicName('€'.repeat(4), small)), 'LIMIT_EXCEEDED', '4 characters are 12 bytes')

  t.equal(verdict(() => checkTopicName('a'.repeat(65535), wide)), 'ok', '65,535 bytes is the MQTT ceiling')
  t.equal(verdict(() => checkTopicName('a'.repeat(65536), wide)), 'BAD_TOPIC', '65,536 bytes breaks MQTT')
  t.equal(verdict(() => checkTopicName('€'.repeat(21846), wide)), 'BAD_TOPIC', '65,538 bytes in 21,846 characters breaks MQTT')
})

t.test('depth: more levels than the limit is LIMIT_EXCEEDED', async (t) => {
  const levels = (n: number): string => Array.from({ length: n }, (_, i) => `l${i}`).join('/')
  t.equal(verdict(() => checkTopicName(levels(limits.maxTopicLevels), limits)), 'ok', `${limits.maxTopicLevels} levels`)
  t.equal(verdict(() => checkTopicName(levels(limits.maxTopicLevels + 1), limits)), 'LIMIT_EXCEEDED', 'one level too many')
  t.equal(verdict(() => checkTopicFilter(levels(limits.maxTopicLevels) + '/#', limits)), 'LIMIT_EXCEEDED', 'a # level counts too')
  t.equal(verdict(() => checkTopicName('/'.repeat(limits.maxTopicLevels), limits)), 'LIMIT_EXCEEDED', 'empty levels count')
  t.equal(verdict(() => checkTopicName('/'.repeat(limits.maxTopicLevels - 1), limits)), 'ok', 'exactly the limit in empty levels')
})

t.test('errors carry a message a user can act on', async (t) => {
  const err = t.throws(() => checkTopicFilter('a/#/b', limits)) as unknown as FusionError
  t.ok(err instanceof FusionError)
  t.match(err.message, /#/, 'names the wildcard')
  t.equal(err.status, 400)
  const long = t.throws(() => checkTopicName('x'.repeat(2000), limits)) as unknown as FusionError
  t.match(long.message, /2000 bytes.*1024/, 'says how long and what the limit is')
})

t.test('wildcardSkipsDollar: a filter starting with a wildcard never matches $ topics [MQTT-4.7.2-1]', async (t) => {
  t.equal(wildcardSkipsDollar('#', '$SYS/broker/uptime'), true)
  t.equal(wildcardSkipsDollar('+/broker/uptime', '$SYS/broker/uptime'), true)
  t.equal(wildcardSkipsDollar('+/#', '$foo'), true)
  t.equal(wildcardSkipsDollar('$SYS/#', '$SYS/broker/uptime'), false, 'an explicit $SYS filter matches')
  t.equal(wildcardSkipsDollar('#', 'sensors/x'), false)
  t.equal(wildcardSkipsDollar('+/x', 'a/x'), false)
  t.equal(wildcardSkipsDollar('a/#', 'a/$x'), false, 'only the first level is special')
})

t.test('chat topics', async (t) => {
  t.equal(chatRoomOf('chat/lobby'), 'lobby')
  t.equal(chatRoomOf('chat/a/b'), 'a/b', 'a room may have levels')
  t.equal(chatRoomOf('chat/'), undefined, 'no room')
  t.equal(chatRoomOf('chat'), undefined)
  t.equal(chatRoomOf('chatter/x'), undefined)
  t.equal(chatRoomOf('sensors/chat/x'), undefined)
  t.equal(chatTopic('lobby'), 'chat/lobby')
})
