import t from 'tap'
import { TokenBucket, KeyedBuckets, RateGate, rateGateFactory } from '../../../../src/core/policy/token-bucket.js'
import { ConnectionGuard, addressKey } from '../../../../src/core/policy/connection-guard.js'
import { clientIdProblem, connectCloseReason, MAX_CLIENT_ID_BYTES } from '../../../../src/core/policy/mqtt-rules.js'
import { throttledLog } from '../../../../src/core/log-throttle.js'
import { FusionError } from '../../../../src/core/errors.js'
import { Writable, Duplex } from 'node:stream'
import { boundSendQueue } from '../../../../src/doors/mqtt-tcp/send-queue.js'

function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 0
  return { now: () => t, advance: (ms) => { t += ms } }
}

t.test('token bucket: burst, refill, cap', async (t) => {
  const c = clock()
  const b = new TokenBucket(10, 20, c.now)
  let n = 0
  while (b.take() && n < 100) n++
  t.equal(n, 20, 'a full bucket gives its burst')
  t.notOk(b.take())
  c.advance(100)
  t.ok(b.take(), '10/s: one token after 100 ms')
  t.notOk(b.take())
  c.advance(60_000)
  t.ok(b.full, 'refills up to the burst, no further')
  n = 0
  while (b.take() && n < 100) n++
  t.equal(n, 20)
})

t.test('rate gate: limited, then cut; backing off drains the strikes', async (t) => {
  const c = clock()
  const g = new RateGate(new TokenBucket(1, 1, c.now), 3, c.now)
  t.equal(g.take(), 'ok')
  t.same([g.take(), g.take(), g.take()], ['limited', 'limited', 'limited'])
  c.advance(1000)
  t.equal(g.take(), 'ok', 'a client that waited is served again')
  t.same([g.take(), g.take(), g.take(), g.take()], ['limited', 'limited', 'limited', 'cut'], 'a second later its strikes had drained')
  const off = rateGateFactory(0)()
  for (let i = 0; i < 10_000; i++) if (off.take() !== 'ok') t.fail('rate 0 is off')
})

t.test('rate gate: a flood read slowly is still cut (a frame within the rate does not clear the strikes)', async (t) => {
  // 1,000 a second, 50 strikes, as the defaults: the gateway reads one frame every 30 us,
  // so one frame in 33 finds a token once the burst is spent.
  const c = clock()
  const g = rateGateFactory(1000, 50, c.now)()
  let verdict = 'ok'
  let n = 0
  for (; n < 100_000 && verdict !== 'cut'; n++) { verdict = g.take(); c.advance(0.03) }
  t.equal(verdict, 'cut')
  t.ok(n < 2200, `cut after ${n} frames (the burst of 2,000, what refilled meanwhile, then about 50 refused)`)
})

t.test('rate gate: a client a little over the rate is cut; one at the rate never is', async (t) => {
  const c = clock()
  const over = rateGateFactory(100, 50, c.now)()
  let verdict = 'ok'
  let seconds = 0
  for (let i = 0; i < 100 * 60 && verdict !== 'cut'; i++) { verdict = over.take(); c.advance(1000 / 200); seconds = (i + 1) / 200 }
  t.equal(verdict, 'cut', `at twice the rate: cut after ${seconds} s`)
  const at = rateGateFactory(100, 50, c.now)()
  for (let i = 0; i < 100 * 60; i++) { if (at.take() === 'cut') { t.fail(`cut at the rate after ${i} messages`); break } c.advance(1000 / 100) }
})

t.test('keyed buckets stay bounded', async (t) => {
  const c = clock()
  const k = new KeyedBuckets(1, 2, 100, c.now)
  for (let i = 0; i < 1000; i++) k.take(`ip-${i}`)
  t.ok(k.size <= 100, `size ${k.size}`)
  t.ok(k.take('x'))
  t.ok(k.take('x'))
  t.notOk(k.take('x'))
})

t.test('connection guard: total, per address, connect rate', async (t) => {
  const c = clock()
  const g = new ConnectionGuard({ maxConnections: 5, maxConnectionsPerIp: 3, connectRate: 100 }, c.now)
  const a = [g.open('10.0.0.1'), g.open('10.0.0.1'), g.open('::ffff:10.0.0.1')]
  t.ok(a.every((x) => !(x instanceof FusionError)))
  const fourth = g.open('10.0.0.1')
  t.ok(fourth instanceof FusionError && fourth.code === 'LIMIT_EXCEEDED', 'per-address cap, IPv4-mapped counted as IPv4')
  const b = [g.open('10.0.0.2'), g.open('10.0.0.3')]
  const full = g.open('10.0.0.4')
  t.ok(full instanceof FusionError && full.code === 'LIMIT_EXCEEDED', 'total cap')
  ;(a[0] as { release: () => void }).release()
  ;(a[0] as { release: () => void }).release() // twice is harmless
  t.equal(g.size, 4)
  t.notOk(g.open('10.0.0.4') instanceof FusionError)
  for (const x of b) (x as { release: () => void }).release()
  const r = new ConnectionGuard({ maxConnections: 1000, maxConnectionsPerIp: 1000, connectRate: 5 }, c.now)
  let ok = 0
  let limited = 0
  for (let i = 0; i < 50; i++) {
    const x = r.open('10.1.1.1')
    if (x instanceof FusionError) { if (x.code === 'RATE_LIMITED') limited++ } else ok++
  }
  t.equal(ok, 10, 'bursts of twice the rate')
  t.equal(limited, 40)
})

t.test('address keys', async (t) => {
  t.equal(addressKey('::ffff:127.0.0.1'), '127.0.0.1')
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8:1:2::9'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:0db8:0001:0002:ffff::1'), '2001:db8:1:2::/64')
  t.equal(addressKey('::1'), '0:0:0:0::/64')
  t.equal(addressKey(undefined), 'unknown')
})

t.test('MQTT CONNECT rules', async (t) => {
  t.equal(clientIdProblem('', true), undefined, '[MQTT-3.1.3-6] empty id with a clean session is fine')
  t.match(clientIdProblem('', false), /clean session/, '[MQTT-3.1.3-8]')
  t.equal(clientIdProblem('sensor-1', false), undefined)
  t.match(clientIdProblem('x'.repeat(MAX_CLIENT_ID_BYTES + 1), true), /at most/)
  t.match(clientIdProblem('a\u0001b', true), /control/)
  t.match(clientIdProblem('ws-0a1b2c3d', true), /belong/)
  t.equal(clientIdProblem('ws-client', true), undefined)
  t.match(connectCloseReason({ clientId: 'a\u0000', clean: true }), /NUL/)
  t.match(connectCloseReason({ clientId: 'a', clean: true, will: { topic: 'a/#' } }), /will topic/)
  t.equal(connectCloseReason({ clientId: 'a', clean: true, username: 'u', will: { topic: 'presence/a' } }), undefined)
})

t.test('throttled log', async (t) => {
  const c = clock()
  const lines: string[] = []
  const log = throttledLog((_l, m) => lines.push(m), 10_000, c.now)
  for (let i = 0; i < 1000; i++) log('warn', 'write failed')
  t.equal(lines.length, 1)
  c.advance(10_000)
  log('warn', 'write failed')
  t.same(lines, ['write failed', 'write failed (and 999 more like it in the last 10 s)'])
})

t.test('send queue: writes say "go on" up to the mark, then the stream is cut', async (t) => {
  // A peer that never reads: nothing written ever completes.
  const stuck = new Duplex({ read () {}, write (_c, _e, _cb) { /* never calls back */ } })
  let slow = 0
  boundSendQueue(stuck, 64 * 1024, () => { slow++ })
  const chunk = Buffer.alloc(16 * 1024)
  const answers: boolean[] = []
  for (let i = 0; i < 6; i++) answers.push(stuck.write(chunk))
  t.same(answers, [true, true, true, true, false, false], 'true until 64 KiB are queued (a plain socket says false past 16 KiB)')
  t.ok(stuck.destroyed, 'past the mark the stream is destroyed')
  t.equal(slow, 1, 'and reported once')
  const fine = new Writable({ write (_c, _e, cb) { cb() } })
  boundSendQueue(fine as unknown as Duplex, 1024, () => { slow++ })
  for (let i = 0; i < 100; i++) fine.write(Buffer.alloc(512))
  t.notOk(fine.destroyed, 'a reader that keeps up is never cut')
})
