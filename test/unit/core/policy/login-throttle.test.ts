import t from 'tap'
import { LoginThrottle } from '../../../../src/core/policy/login-throttle.js'
import { Auth } from '../../../../src/core/policy/auth.js'
import { UserStore, hashPassword } from '../../../../src/core/policy/users.js'

t.test('a user name waits after 10 failures in a row, the wait doubling to a minute; success resets', async (t) => {
  let now = 1_000_000
  const th = new LoginThrottle(() => now)
  for (let i = 0; i < 9; i++) { th.check('alice'); th.failed('alice') }
  t.doesNotThrow(() => th.check('alice'), '9 failures: no wait')
  th.failed('alice')
  t.throws(() => th.check('alice'), { code: 'RATE_LIMITED', message: /try again in 1 s/ }, '10th failure: a 1 s wait')
  t.doesNotThrow(() => th.check('bob'), 'another name is not affected')
  now += 1000
  t.doesNotThrow(() => th.check('alice'), 'after the wait, one more try')
  th.failed('alice')
  t.throws(() => th.check('alice'), { message: /try again in 2 s/ }, 'and the next failure doubles it')
  for (let i = 0; i < 10; i++) th.failed('alice')
  t.throws(() => th.check('alice'), { message: /try again in 60 s/ }, 'never more than a minute')
  now += 60_000
  th.succeeded('alice')
  for (let i = 0; i < 9; i++) th.failed('alice')
  t.doesNotThrow(() => th.check('alice'), 'a right password resets the count')
})

t.test('names remembered are bounded: the least recently failed is forgotten first', async (t) => {
  const th = new LoginThrottle(() => 0, { maxNames: 3, freeFailures: 1 })
  for (const n of ['a', 'b', 'c']) th.failed(n)
  th.failed('a') // a is now the most recent
  th.failed('d') // over the bound: b goes
  t.doesNotThrow(() => th.check('b'), 'b forgotten')
  for (const n of ['a', 'c', 'd']) t.throws(() => th.check(n), { code: 'RATE_LIMITED' }, `${n} remembered`)
})

t.test('Auth: a waiting name is refused without checking the password; unknown names wait alike', async (t) => {
  let now = 5_000_000
  const users = UserStore.fromText(`alice:${await hashPassword('right')}\n`)
  const auth = new Auth({ users, secret: Buffer.alloc(32, 1), tokenTtlMs: 60_000, now: () => now })
  for (let i = 0; i < 10; i++) t.equal(await auth.checkPassword('alice', 'guess'), false)
  await t.rejects(auth.checkPassword('alice', 'right'), { code: 'RATE_LIMITED' }, 'even the right password waits: a wait tells nothing')
  await t.rejects(auth.login('alice', 'right'), { code: 'RATE_LIMITED' }, 'POST /api/login goes through the same check')
  for (let i = 0; i < 10; i++) t.equal(await auth.checkPassword('mallory', 'guess'), false)
  await t.rejects(auth.checkPassword('mallory', 'guess'), { code: 'RATE_LIMITED' }, 'an unknown name waits the same way (no user enumeration)')
  now += 1000
  t.equal(await auth.checkPassword('alice', 'right'), true, 'after the wait the right password works')
  t.equal(await auth.checkPassword('alice', 'guess'), false, 'and the count started again')
  t.equal(await auth.checkPassword('alice', 'right'), true)
})
