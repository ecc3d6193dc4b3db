import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addUser, removeUser, hashPassword, verifyPassword, UserStore, MAX_CONCURRENT_CHECKS } from '../../../../src/core/policy/users.js'

t.test('hash and verify', async (t) => {
  const h = await hashPassword('s3cret')
  t.match(h, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
  t.notMatch(h, /s3cret/)
  t.ok(await verifyPassword('s3cret', h))
  t.notOk(await verifyPassword('s3cret ', h))
  t.notOk(await verifyPassword('s3cret', 'scrypt$1048577$8$1$AAAA$BBBB'), 'a cost out of bounds is refused, not computed')
  t.not(await hashPassword('s3cret'), h, 'salted: the same password hashes differently')
})

t.test('users file: add, update, load, verify, remove', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-users-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'users')
  t.equal(await addUser(file, 'alice', 'pw-a'), 'added')
  t.equal(await addUser(file, 'bob', 'pw-b'), 'added')
  t.equal(await addUser(file, 'alice', 'pw-a2'), 'updated')
  t.equal(statSync(file).mode & 0o777, 0o600)
  const text = readFileSync(file, 'utf8')
  t.equal(text.split('\n').filter(Boolean).length, 2)
  t.notMatch(text, /pw-/)
  const store = UserStore.load(file)
  t.equal(store.size, 2)
  t.ok(await store.verify('alice', 'pw-a2'))
  t.notOk(await store.verify('alice', 'pw-a'))
  t.notOk(await store.verify('nobody', 'pw-a2'))
  t.ok(removeUser(file, 'bob'))
  t.notOk(removeUser(file, 'bob'))
  t.notOk(UserStore.load(file).has('bob'))
  await t.rejects(addUser(file, 'bad name', 'x'), { code: 'BAD_OPTION' })
  await t.rejects(addUser(file, 'a/b', 'x'), { code: 'BAD_OPTION' })
})

t.test('a bad users file names the line', async (t) => {
  t.throws(() => UserStore.fromText('# c\nalice:plaintext'), { code: 'BAD_OPTION', message: /line 2/ })
  t.throws(() => UserStore.fromText('al ice:scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$' + 'A'.repeat(44)), { code: 'BAD_OPTION', message: /line 1/ })
  const dir = mkdtempSync(join(tmpdir(), 'fusion-users-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.throws(() => UserStore.load(join(dir, 'missing')), { code: 'BAD_OPTION', message: /cannot be read/ })
  writeFileSync(join(dir, 'f'), 'x')
  t.throws(() => UserStore.load(join(dir, 'f')), { code: 'BAD_OPTION' })
})

t.test('too many checks at once answer RATE_LIMITED', async (t) => {
  const store = UserStore.fromText(`alice:${await hashPassword('pw')}`)
  const results = await Promise.allSettled(Array.from({ length: MAX_CONCURRENT_CHECKS + 4 }, () => store.verify('alice', 'pw')))
  const limited = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'RATE_LIMITED').length
  t.equal(limited, 4)
  t.ok(await store.verify('alice', 'pw'), 'and checks work again once they finished')
})
