// The ACL explains its own decisions: explain() answers exactly what checkPublish and
// checkSubscribe decide (one decide() behind both), and names the rule by file and line.
import t from 'tap'
import { createDefaultAcl, type Identity } from '../../../../src/core/policy/acl.js'
import { createFileAcl, parseAclRules } from '../../../../src/core/policy/acl-file.js'
import { UserStore, addUser } from '../../../../src/core/policy/users.js'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const RULES = `# anonymous
topic read public/#
topic deny public/secret

user alice
topic readwrite sensors/#
topic deny sensors/secret
topic write chat/+

user bob
topic read #

pattern readwrite home/%u/#
pattern write devices/%c/state
pattern deny devices/%c/keys
`

const acl = createFileAcl(parseAclRules(RULES, 'rules.acl'))

function allowedByCheck (who: Identity, access: 'read' | 'write', target: string): boolean {
  try {
    if (access === 'read') acl.checkSubscribe(who, target)
    else acl.checkPublish(who, target)
    return true
  } catch { return false }
}

t.test('explain names the rule, its line and its section', async (t) => {
  const ex = (user: string | undefined, client: string | undefined, access: 'read' | 'write', target: string) =>
    acl.explain!({ username: user, clientId: client }, access, target)
  t.match(ex('alice', 'a1', 'write', 'sensors/kitchen/temp'), { allowed: true, by: 'rule', rule: { file: 'rules.acl', line: 6, text: 'topic readwrite sensors/#', section: 'user alice' } })
  t.match(ex('alice', 'a1', 'read', 'sensors/#'), { allowed: false, by: 'rule', rule: { line: 7, text: 'topic deny sensors/secret' } }, 'a deny that overlaps the filter decides')
  t.match(ex('alice', 'a1', 'read', 'sensors/+/temp'), { allowed: true, rule: { line: 6 } })
  t.match(ex(undefined, 'c', 'read', 'public/news'), { allowed: true, rule: { line: 2, section: 'anonymous' } })
  t.match(ex(undefined, 'c', 'read', 'public/secret'), { allowed: false, rule: { line: 3 } })
  t.match(ex(undefined, 'c', 'write', 'public/news'), { allowed: false, by: 'default' }, 'read-only: no rule allows the write')
  t.match(ex('carol', 'c', 'read', 'public/news'), { allowed: false, by: 'default', detail: /no `user carol` section/ }, 'a user without a section has no anonymous rules')
  t.match(ex('bob', 'b', 'read', 'sensors/#'), { allowed: true, rule: { line: 11, section: 'user bob' } })
  t.match(ex('bob', 'b', 'read', '#'), { allowed: false, rule: { line: 15, section: 'pattern' } }, '# overlaps devices/b/keys: the pattern deny refuses it')
  t.match(ex('bob', 'b', 'read', '$SYS/#'), { allowed: false, by: 'default' }, '# does not reach $SYS')
  t.match(ex('bob', 'b', 'read', 'home/bob/lights'), { allowed: true, rule: { line: 11 } }, 'the first allow that matched')
  t.match(ex('carol', 'c', 'write', 'home/carol/x'), { allowed: true, rule: { line: 13, section: 'pattern', text: 'pattern readwrite home/%u/#' } })
  t.match(ex(undefined, 'c', 'write', 'home/x/y'), { allowed: false, by: 'default' }, '%u matches no anonymous client')
  t.match(ex(undefined, 'd7', 'write', 'devices/d7/state'), { allowed: true, rule: { line: 14 } })
  t.match(ex(undefined, undefined, 'write', 'devices/d7/state'), { allowed: false, by: 'default' }, 'no client id: no %c pattern matches')
  t.match(ex('bob', 'd7', 'read', 'devices/d7/keys'), { allowed: false, rule: { line: 15, section: 'pattern' } }, 'a pattern deny beats a user allow')
  t.match(ex('alice', 'a1', 'write', '$SYS/broker'), { allowed: false, by: 'builtin' })
  t.match(ex('alice', 'a1', 'write', 'presence/someone'), { allowed: false, by: 'builtin', detail: /presence/ })
  t.throws(() => ex('alice', 'a1', 'write', 'sensors/+'), { code: 'BAD_TOPIC' }, 'a publish has no wildcards')
  t.throws(() => ex('alice', 'a1', 'read', 'sensors/#/x'), { code: 'BAD_TOPIC' })
})

t.test('explain agrees with the checks, on every combination tried', async (t) => {
  const users = [undefined, 'alice', 'bob', 'carol']
  const clients = ['c1', 'd7', 'a1']
  const targets = ['public/news', 'public/secret', 'public/#', 'public/+', 'sensors/a/temp', 'sensors/secret', 'sensors/#', 'sensors/+',
    'chat/lobby', 'chat/+', 'chat/#', '#', '+/+', 'home/alice/x', 'home/bob/#', 'home/+/x', 'devices/d7/state', 'devices/d7/keys',
    'devices/+/keys', 'devices/c1/state', '$SYS/x', 'presence/c1', 'presence/d7', 'a', '']
  let n = 0
  for (const user of users) {
    for (const clientId of clients) {
      for (const target of targets) {
        for (const access of ['read', 'write'] as const) {
          if (access === 'write' && /[+#]/.test(target)) continue
          if (target === '') continue
          const who: Identity = { username: user, clientId, door: 'mqtt' }
          const d = acl.explain!({ username: user, clientId }, access, target)
          if (d.allowed !== allowedByCheck(who, access, target)) t.fail(`${user}/${clientId} ${access} ${target}: explain ${d.allowed}, check disagrees`)
          n++
        }
      }
    }
  }
  t.pass(`${n} decisions agree`)
})

t.test('the default ACL explains too', async (t) => {
  const d = createDefaultAcl()
  t.match(d.explain!({}, 'read', '#'), { allowed: true, by: 'default' })
  t.match(d.explain!({ clientId: 'x' }, 'write', 'presence/x'), { allowed: true })
  t.match(d.explain!({ clientId: 'x' }, 'write', 'presence/y'), { allowed: false, by: 'builtin' })
})

t.test('the admin mark in the users file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-admin-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'users')
  await addUser(file, 'plain', 'pw-1')
  await addUser(file, 'boss', 'pw-2', true)
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  t.match(lines[0], /^plain:scrypt\$[^:]+$/, 'an existing-format line without a mark')
  t.match(lines[1], /^boss:scrypt\$[^:]+:admin$/, 'the mark is a third field')
  let store = UserStore.load(file)
  t.equal(store.isAdmin('boss'), true)
  t.equal(store.isAdmin('plain'), false)
  t.equal(store.isAdmin('nobody'), false)
  t.equal(await store.verify('boss', 'pw-2'), true, 'the password still checks')
  await addUser(file, 'boss', 'pw-3')
  t.equal(UserStore.load(file).isAdmin('boss'), true, 'a new password keeps the mark')
  await addUser(file, 'boss', 'pw-3', false)
  store = UserStore.load(file)
  t.equal(store.isAdmin('boss'), false, '--no-admin clears it')
  const hash = lines[0]!.split(':')[1]
  t.throws(() => UserStore.fromText(`x:${hash}:root\n`), { code: 'BAD_OPTION', message: /line 1: after the hash only ":admin"/ })
  t.throws(() => UserStore.fromText(`x:${hash}:admin:more\n`), { code: 'BAD_OPTION' })
})
