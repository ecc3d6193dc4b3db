// Issue 13 item 9: password guessing is limited per address too, over every user name,
// in Auth.checkPassword, which every door calls (MQTT CONNECT, /mqtt, POST /api/login).
import t from 'tap'
import { Auth } from '../../../../src/core/policy/auth.js'
import { AddressLoginGate, LOGIN_FAILURES_PER_ADDRESS } from '../../../../src/core/policy/login-throttle.js'
import { UserStore, hashPassword } from '../../../../src/core/policy/users.js'

const users = UserStore.fromText(`alice:${await hashPassword('alice-pw')}\n`)

t.test('failures from one address over many names: then every check from it waits', async (t) => {
  let now = 1_000_000
  const auth = new Auth({ users, secret: Buffer.alloc(32, 1), tokenTtlMs: 60_000, now: () => now })
  const burst = LOGIN_FAILURES_PER_ADDRESS.burst
  for (let i = 0; i < burst; i++) t.equal(await auth.checkPassword(`name-${i}`, 'guess', '203.0.113.5'), false)
  await t.rejects(auth.checkPassword('someone-else', 'guess', '203.0.113.5'), { code: 'RATE_LIMITED', message: /from this address/ }, 'a new name does not escape the address limit')
  await t.rejects(auth.checkPassword('alice', 'alice-pw', '203.0.113.5'), { code: 'RATE_LIMITED' }, 'even the right password waits: a wait tells nothing')
  await t.rejects(auth.login('alice', 'alice-pw', '203.0.113.5'), { code: 'RATE_LIMITED' }, 'POST /api/login goes through the same check')
  t.equal(await auth.checkPassword('alice', 'alice-pw', '203.0.113.6'), true, 'another address is not affected')
  t.equal(await auth.checkPassword('alice', 'alice-pw', '::ffff:203.0.113.7'), true)
  now += 1000
  t.equal(await auth.checkPassword('name-x', 'guess', '203.0.113.5'), false, 'a second later one more guess')
  await t.rejects(auth.checkPassword('name-y', 'guess', '203.0.113.5'), { code: 'RATE_LIMITED' }, 'and no more: one a second')
})

t.test('right passwords take nothing: a NAT of devices that log in is never slowed', async (t) => {
  const auth = new Auth({ users, secret: Buffer.alloc(32, 1), tokenTtlMs: 60_000 })
  for (let i = 0; i < 30; i++) t.equal(await auth.checkPassword('alice', 'alice-pw', '198.51.100.1'), true)
  t.equal(await auth.checkPassword('nobody', 'guess', '198.51.100.1'), false, 'the failures allowance is still whole')
})

t.test('an IPv6 /64 is one address', async (t) => {
  const gate = new AddressLoginGate(() => 0, { perSec: 1, burst: 2 })
  gate.failed('2001:db8:1:2::1')
  gate.failed('2001:db8:1:2:ffff::9')
  t.throws(() => gate.check('2001:db8:1:2::abcd'), { code: 'RATE_LIMITED' })
  t.doesNotThrow(() => gate.check('2001:db8:1:3::1'), 'the next /64 is another address')
  t.doesNotThrow(() => gate.check(undefined), 'no address: not limited here')
})
