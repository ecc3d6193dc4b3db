import t from 'tap'
import { createDefaultAcl, type Identity } from '../../../../src/core/policy/acl.js'
import { createFileAcl, parseAclRules } from '../../../../src/core/policy/acl-file.js'
import { filtersOverlap, splitLevels, topicMatches } from '../../../../src/core/topics/topic-match.js'
import { FusionError } from '../../../../src/core/errors.js'

const who = (username: string | undefined, clientId = 'c1', door: Identity['door'] = 'mqtt'): Identity => ({ username, clientId, door })

function code (fn: () => void): string | undefined {
  try { fn(); return undefined } catch (err) { return (err as FusionError).code }
}

t.test('rule matching: topics and filters', async (t) => {
  const yes: Array<[string, string]> = [
    ['a/b', 'a/b'], ['a/+', 'a/b'], ['a/#', 'a/b/c'], ['a/#', 'a'], ['#', 'a/b'], ['+/+', 'a/b'],
    ['a/+', 'a/+'], ['a/#', 'a/+/c'], ['a/#', 'a/#'], ['#', '#'], ['$SYS/#', '$SYS/x'], ['+/b', '/b']
  ]
  const no: Array<[string, string]> = [
    ['a/b', 'a/c'], ['a/+', 'a/b/c'], ['a/+', 'a'], ['a/b', 'a/+'], ['a/+', 'a/#'], ['a/b/#', 'a/c'],
    ['#', '$SYS/x'], ['+/x', '$SYS/x'], ['a', 'a/b'], ['a/b', 'a']
  ]
  for (const [rule, target] of yes) t.ok(topicMatches(rule, target), `${rule} covers ${target}`)
  for (const [rule, target] of no) t.notOk(topicMatches(rule, target), `${rule} does not cover ${target}`)
})

t.test('filter overlap', async (t) => {
  const o = (a: string, b: string): boolean => filtersOverlap(splitLevels(a), splitLevels(b))
  t.ok(o('chat/#', 'chat/secret'))
  t.ok(o('chat/+', 'chat/secret'))
  t.ok(o('+/secret', 'chat/+'))
  t.ok(o('a/#', 'a'))
  t.notOk(o('chat/+', 'chat/a/b'))
  t.notOk(o('chat/x', 'chat/y'))
  t.notOk(o('#', '$SYS/x'))
  t.ok(o('$SYS/#', '$SYS/+'))
})

t.test('the default policy', async (t) => {
  const acl = createDefaultAcl()
  t.equal(code(() => acl.checkPublish(who(undefined), 'chat/lobby')), undefined)
  t.equal(code(() => acl.checkPublish(who(undefined), 'sensors/x')), undefined)
  t.equal(code(() => acl.checkPublish(who(undefined), '$SYS/x')), 'ACL_DENIED')
  t.equal(code(() => acl.checkPublish(who(undefined, 'dev1'), 'presence/dev1')), undefined)
  t.equal(code(() => acl.checkPublish(who(undefined, 'dev1'), 'presence/dev2')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(who(undefined), '$SYS/#')), undefined)
  t.equal(code(() => acl.checkSubscribe(who(undefined), '#')), undefined)
})

const RULES = `
# anonymous clients
topic read chat/#
topic read $SYS/#

user alice
topic readwrite chat/#
topic deny chat/admin
topic write sensors/+/temp

user bob
topic chat/#

pattern readwrite home/%u/#
pattern write presence/%c
pattern read devices/%c/cmd
`

t.test('a rules file: users, anonymous, deny, patterns', async (t) => {
  const acl = createFileAcl(parseAclRules(RULES))
  const alice = who('alice', 'a-phone')
  const bob = who('bob', 'b-laptop', 'ws')
  const anon = who(undefined, 'anon-1', 'mqtt-ws')
  // anonymous: read chat, nothing else
  t.equal(code(() => acl.checkSubscribe(anon, 'chat/lobby')), undefined)
  t.equal(code(() => acl.checkSubscribe(anon, 'chat/#')), undefined)
  t.equal(code(() => acl.checkPublish(anon, 'chat/lobby')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(anon, 'sensors/#')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(anon, '$SYS/broker/uptime')), undefined)
  // alice: readwrite chat except admin; writes sensors temps but may not read them
  t.equal(code(() => acl.checkPublish(alice, 'chat/lobby')), undefined)
  t.equal(code(() => acl.checkPublish(alice, 'chat/admin')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(alice, 'chat/admin')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(alice, 'chat/#')), 'ACL_DENIED', 'a wildcard that would reach the denied topic is refused')
  t.equal(code(() => acl.checkSubscribe(alice, 'chat/lobby')), undefined)
  t.equal(code(() => acl.checkPublish(alice, 'sensors/k1/temp')), undefined)
  t.equal(code(() => acl.checkSubscribe(alice, 'sensors/k1/temp')), 'ACL_DENIED')
  t.equal(code(() => acl.checkPublish(alice, 'sensors/k1/hum')), 'ACL_DENIED')
  // bob: access left out means readwrite
  t.equal(code(() => acl.checkPublish(bob, 'chat/admin')), undefined)
  t.equal(code(() => acl.checkSubscribe(bob, 'chat/#')), undefined)
  // patterns: %u and %c
  t.equal(code(() => acl.checkPublish(alice, 'home/alice/lamp')), undefined)
  t.equal(code(() => acl.checkSubscribe(alice, 'home/alice/#')), undefined)
  t.equal(code(() => acl.checkPublish(alice, 'home/bob/lamp')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(alice, 'home/#')), 'ACL_DENIED', 'a filter wider than the pattern is refused')
  t.equal(code(() => acl.checkPublish(anon, 'home/undefined/x')), 'ACL_DENIED', '%u never applies to anonymous clients')
  t.equal(code(() => acl.checkPublish(alice, 'presence/a-phone')), undefined)
  t.equal(code(() => acl.checkSubscribe(anon, 'devices/anon-1/cmd')), undefined)
  t.equal(code(() => acl.checkSubscribe(anon, 'devices/+/cmd')), 'ACL_DENIED')
  // reserved rules hold whatever the file says
  t.equal(code(() => acl.checkPublish(alice, 'presence/someone-else')), 'ACL_DENIED')
  t.equal(code(() => acl.checkPublish(alice, '$SYS/x')), 'ACL_DENIED')
  // an unknown user gets only the patterns
  t.equal(code(() => acl.checkPublish(who('carol', 'c1'), 'chat/lobby')), 'ACL_DENIED')
  t.equal(code(() => acl.checkPublish(who('carol', 'c1'), 'home/carol/x')), undefined)
})

t.test('substituted values cannot widen a pattern', async (t) => {
  const acl = createFileAcl(parseAclRules('pattern readwrite home/%u/#\npattern readwrite dev/%c'))
  t.equal(code(() => acl.checkSubscribe(who('#', 'x'), 'home/#')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(who('a/b', 'x'), 'home/a/b/c')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(who(undefined, '+'), 'dev/+')), 'ACL_DENIED')
  t.equal(code(() => acl.checkSubscribe(who(undefined, 'd1'), 'dev/d1')), undefined)
})

t.test('parse errors name the line', async (t) => {
  t.throws(() => parseAclRules('topic read chat/#\nfoo bar'), { code: 'BAD_OPTION', message: /line 2: unknown keyword "foo"/ })
  t.throws(() => parseAclRules('user'), { code: 'BAD_OPTION', message: /line 1: user needs a name/ })
  t.throws(() => parseAclRules('topic read chat/#/x'), { code: 'BAD_OPTION', message: /line 1/ })
  t.throws(() => parseAclRules('topic read a+/b'), { code: 'BAD_OPTION', message: /line 1/ })
  t.throws(() => parseAclRules('pattern write'), { code: 'BAD_OPTION', message: /needs a topic filter/ })
  const r = parseAclRules('# only a comment\n\n  topic   write   a/b  \r\n')
  t.equal(r.anonymous.length, 1)
})
