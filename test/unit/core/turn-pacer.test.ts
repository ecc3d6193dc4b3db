import t from 'tap'
import { performance } from 'node:perf_hooks'
import { TurnPacer } from '../../../src/core/turn-pacer.js'

const spin = (ms: number): void => { const end = performance.now() + ms; while (performance.now() < end) { /* busy */ } }
const later = (p: TurnPacer): Promise<void> => new Promise((resolve) => p.run(() => resolve()))

t.test('work runs at once while the turn has room, in order', async (t) => {
  const p = new TurnPacer(50)
  const seen: number[] = []
  for (let i = 0; i < 5; i++) p.run(() => seen.push(i))
  t.same(seen, [0, 1, 2, 3, 4], 'cheap work is not delayed')
  t.equal(p.waiting, 0)
})

t.test('a burst past the slice waits for later turns, in order, and a timer fires before it is done', async (t) => {
  const p = new TurnPacer(10)
  const seen: number[] = []
  for (let i = 0; i < 60; i++) p.run(() => { spin(2); seen.push(i) }) // 120 ms of work
  t.ok(seen.length < 60 && seen.length >= 1, `${seen.length} ran at once, the rest wait`)
  const atTimer = await new Promise<number>((resolve) => setTimeout(() => resolve(seen.length), 1))
  t.ok(atTimer < 60, `the timer ran after ${atTimer} of 60 items, not after all of them`)
  await later(p)
  t.same(seen, Array.from({ length: 60 }, (_, i) => i), 'all of them, in order')
})

t.test("flush(key) runs that key's waiting work now, once", async (t) => {
  const p = new TurnPacer(1)
  const seen: string[] = []
  p.run(() => spin(3)) // uses up this turn
  p.run(() => seen.push('a'), 'a')
  p.run(() => seen.push('b'), 'b')
  t.same(seen, [], 'both wait')
  p.flush('b')
  t.same(seen, ['b'], 'b ran at once')
  p.flush('b')
  await later(p)
  t.same(seen, ['b', 'a'], 'b did not run twice; a ran in its turn')
})

t.test('an item that throws does not stop the others', async (t) => {
  const p = new TurnPacer(5)
  let ran = 0
  p.run(() => { throw new Error('boom') })
  p.run(() => { ran++ })
  await later(p)
  t.equal(ran, 1)
})
