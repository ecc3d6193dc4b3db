import t from 'tap'
import { createAdmit, cleanName, isCounted } from '../../../src/core/admit.js'
import { createDefaultAcl } from '../../../src/core/policy/acl.js'
import { Stats } from '../../../src/core/stats.js'
import type { RateVerdict } from '../../../src/core/types.js'

const limits = { maxTopicLength: 256, maxTopicLevels: 8, maxPayload: 100 }

function setup (): { admit: ReturnType<typeof createAdmit>, stats: Stats } {
  const stats = new Stats()
  return { admit: createAdmit({ acl: createDefaultAcl(), stats, limits, now: () => 1234 }), stats }
}

const who = { clientId: 'c1', door: 'ws' as const }

t.test('the origin is stamped from the proved identity, the door and the clock', async (t) => {
  const { admit, stats } = setup()
  const ok = admit({ source: 'ws-publish', who: { clientId: 'c1', username: 'alice', door: 'mqtt-ws' }, name: 'Alice', topic: 'a/b', payload: Buffer.from('x') })
  t.same(ok.origin, { ts: 1234, via: 'mqtt', from: 'Alice', clientId: 'c1', door: 'mqtt-ws', user: 'alice' })
  t.equal(stats.admitted['ws-publish'], 1)
})

t.test('chat text is wrapped in the envelope the gateway writes', async (t) => {
  const { admit } = setup()
  const ok = admit({ source: 'ws-chat', who, name: 'bob\n\u001b[1m', topic: 'chat/x', payload: Buffer.from('hi'), wrapChat: true })
  t.same(JSON.parse(ok.payload.toString()), { from: 'bob[1m', text: 'hi', ts: 1234, via: 'ws' })
  const raw = admit({ source: 'mqtt-publish', who, name: 'bob', topic: 'chat/x', payload: Buffer.from('{"from":"alice","text":"x"}') })
  t.equal(raw.payload.toString(), '{"from":"alice","text":"x"}', 'an MQTT payload is published as it came (PROTOCOL.md)')
})

t.test('refusals in order, each counted once', async (t) => {
  const { admit, stats } = setup()
  const tryIt = (topic: unknown, payload = Buffer.from('x')): unknown => {
    try { admit({ source: 'ws-publish', who, name: 'n', topic, payload }); return undefined } catch (err) { return err }
  }
  t.match(tryIt('a/+'), { code: 'BAD_TOPIC' })
  t.match(tryIt('$SYS/x'), { code: 'ACL_DENIED' })
  t.match(tryIt('presence/other'), { code: 'ACL_DENIED' })
  t.match(tryIt('a', Buffer.alloc(101)), { code: 'TOO_LARGE' })
  t.ok(isCounted(tryIt('a', Buffer.alloc(101))))
  t.same({ bad: stats.dropped.badInput, acl: stats.dropped.aclDenied, large: stats.dropped.tooLarge }, { bad: 1, acl: 2, large: 2 })
  t.equal(stats.admitted['ws-publish'], 0)
})

t.test('the rate gate is taken only for a message that passed the other checks', async (t) => {
  const { admit, stats } = setup()
  let taken = 0
  const rate = { take (): RateVerdict { taken++; return 'limited' } }
  t.throws(() => admit({ source: 'mqtt-publish', who, name: 'n', topic: '$SYS/x', payload: Buffer.from('x'), rate }), { code: 'ACL_DENIED' })
  t.equal(taken, 0)
  t.throws(() => admit({ source: 'mqtt-publish', who, name: 'n', topic: 'a', payload: Buffer.from('x'), rate }), { code: 'RATE_LIMITED' })
  t.equal(stats.dropped.rateLimited, 1)
})

t.test('check() runs the same rules without counting (a will at CONNECT)', async (t) => {
  const { admit, stats } = setup()
  admit.check({ source: 'mqtt-will', who, name: 'n', topic: 'a', payload: Buffer.from('x') })
  t.throws(() => admit.check({ source: 'mqtt-will', who, name: 'n', topic: '$SYS/a', payload: Buffer.from('x') }), { code: 'ACL_DENIED' })
  t.equal(stats.admitted['mqtt-will'], 0)
})

t.test('cleanName', async (t) => {
  t.equal(cleanName(' a\u0000b\u009bc\u007f '), 'abc')
  t.equal(cleanName('\n\r'), undefined)
  t.equal(cleanName('x'.repeat(100))?.length, 64)
  t.equal(cleanName(undefined), undefined)
})
