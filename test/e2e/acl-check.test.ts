// `mqtt-fusion acl check` and GET /api/acl/explain: the same answer from the same ACL,
// the rule by file and line; exit codes 0/1/2; the API for admins only.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'
import { startGateway } from '../helpers/gateway.js'
import { addUser } from '../../src/core/policy/users.js'

const dir = mkdtempSync(join(tmpdir(), 'fusion-acl-check-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const ACL = join(dir, 'rules.acl')
writeFileSync(ACL, `# anonymous
topic read public/#
user alice
topic readwrite sensors/#
topic deny sensors/secret
pattern write devices/%c/state
`)

t.test('acl check: allowed, denied by a rule, denied by default, bad input', async (t) => {
  let r = await runCli(['acl', 'check', '--acl', ACL, '--user', 'alice', 'write', 'sensors/kitchen/temp'])
  t.equal(r.code, 0, 'allowed: exit 0')
  t.equal(r.stdout, `allowed: user alice may publish to sensors/kitchen/temp\n  rule ${ACL}:4: topic readwrite sensors/# (under user alice)\n`)

  r = await runCli(['acl', 'check', '--acl', ACL, '--user', 'alice', 'read', 'sensors/#'])
  t.equal(r.code, 1, 'denied: exit 1')
  t.equal(r.stdout, `denied: user alice may not subscribe to sensors/#\n  rule ${ACL}:5: topic deny sensors/secret (under user alice)\n`)

  r = await runCli(['acl', 'check', '--acl', ACL, 'write', 'public/news'])
  t.equal(r.code, 1)
  t.match(r.stdout, /^denied: anonymous may not publish to public\/news\n {2}default: no rule matched/)

  r = await runCli(['acl', 'check', '--acl', ACL, '--client', 'd9', 'write', 'devices/d9/state'])
  t.equal(r.code, 0)
  t.match(r.stdout, `rule ${ACL}:6: pattern write devices/%c/state (pattern)`)

  r = await runCli(['acl', 'check', '--acl', ACL, '--user', 'alice', 'write', '$SYS/x'])
  t.equal(r.code, 1)
  t.match(r.stdout, /built-in rule: \$ topics belong to the broker/)

  r = await runCli(['acl', 'check', '--acl', ACL, '--json', '--user', 'alice', 'read', 'sensors/+/temp'])
  t.equal(r.code, 0)
  t.same(JSON.parse(r.stdout), { access: 'read', topic: 'sensors/+/temp', user: 'alice', client: null, allowed: true, by: 'rule', rule: { file: ACL, line: 4, text: 'topic readwrite sensors/#', section: 'user alice' }, detail: `${ACL}:4: topic readwrite sensors/# (under user alice)` })

  for (const [args, why] of [
    [['acl', 'check', '--acl', ACL, 'write', 'sensors/+'], /must not contain \+ or #/],
    [['acl', 'check', '--acl', ACL, 'read', 'a/#/b'], /# must be the whole last level/],
    [['acl', 'check', '--acl', join(dir, 'missing'), 'read', 'a'], /cannot be read \(ENOENT\)/],
    [['acl', 'check', 'read', 'a'], /--acl FILE is needed/],
    [['acl', 'check', '--acl', ACL, 'delete', 'a'], /expected: acl check read\|write/],
    [['acl', 'check', '--acl', ACL, '--user', 'a b', 'read', 'a'], /--user: a user name is/],
    [['acl', 'check', '--acl', ACL, '--bogus', 'read', 'a'], /bogus/]
  ] as Array<[string[], RegExp]>) {
    r = await runCli(args)
    t.equal(r.code, 2, `${args.slice(2).join(' ')}: exit 2`)
    t.match(r.stderr, why)
  }
  const badFile = join(dir, 'bad.acl')
  writeFileSync(badFile, 'topic read ok/#\nuser\n')
  r = await runCli(['acl', 'check', '--acl', badFile, 'read', 'ok/x'])
  t.equal(r.code, 2, 'a bad rules file: exit 2')
  t.match(r.stderr, /line 2: user needs a name/)
})

t.test('GET /api/acl/explain: the same answer, for admins only', async (t) => {
  const users = join(dir, 'users')
  await addUser(users, 'alice', 'pw-alice-1', true)
  await addUser(users, 'bob', 'pw-bob-1')
  const { urls } = await startGateway(t, { users, acl: ACL, tokenSecret: 'z'.repeat(32) })
  const login = async (username: string, password: string): Promise<string> => {
    const res = await fetch(`${urls.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })
    return ((await res.json()) as { token: string }).token
  }
  const admin = await login('alice', 'pw-alice-1')
  const plain = await login('bob', 'pw-bob-1')
  const explain = async (query: string, token?: string): Promise<{ status: number, body: any }> => {
    const res = await fetch(`${urls.http}/api/acl/explain?${query}`, token ? { headers: { authorization: `Bearer ${token}` } } : {})
    return { status: res.status, body: await res.json() }
  }
  const q = 'access=read&topic=sensors%2F%23&user=alice'
  t.match(await explain(q), { status: 401, body: { code: 'NOT_AUTHORIZED' } }, 'no token: 401')
  t.match(await explain(q, plain), { status: 403, body: { code: 'ACL_DENIED', message: /bob is not an admin/ } }, 'not an admin: 403')
  const got = await explain(q, admin)
  t.equal(got.status, 200, 'an admin: 200')
  const cli = await runCli(['acl', 'check', '--acl', ACL, '--json', '--user', 'alice', 'read', 'sensors/#'])
  t.same(got.body, JSON.parse(cli.stdout), 'the same JSON as acl check --json')
  t.match(await explain('access=write&topic=devices%2Fd9%2Fstate&client=d9', admin), { status: 200, body: { allowed: true, rule: { line: 6 } } })
  t.match(await explain('access=write&topic=public%2Fx', admin), { status: 200, body: { allowed: false, by: 'default', user: null } })
  t.match(await explain('access=write&topic=a%2F%2B', admin), { status: 400, body: { code: 'BAD_TOPIC' } }, 'a wildcard in a publish: 400')
  t.match(await explain('access=delete&topic=a', admin), { status: 400, body: { code: 'BAD_FRAME' } })
  t.match(await explain('access=read', admin), { status: 400, body: { code: 'BAD_FRAME' } })
  t.match(await explain('access=read&topic=a&user=a%20b', admin), { status: 400, body: { code: 'BAD_FRAME' } })
})

t.test('GET /api/acl/explain with auth off: 404', async (t) => {
  const { urls } = await startGateway(t, { acl: ACL })
  const res = await fetch(`${urls.http}/api/acl/explain?access=read&topic=a`)
  t.equal(res.status, 404)
  t.match(await res.json(), { code: 'NOT_FOUND', message: /auth is off/ })
})
