import t from 'tap'
import { performance } from 'node:perf_hooks'
import { TurnPacer } from '../../../src/core/turn-pacer.js'

const spin = (ms: number): void => { const end = performance.now() + ms; while (performance.now() < end) { /* busy */ } }

t.test('runs everything, in order, later than the caller', async (t) => {
  const p = new TurnPacer(5)
  const seen: number[] = []
  for (let i = 0; i < 100; i++) p.run(() => seen.push(i))
  t.same(seen, [], 'nothing runs synchronously')
  await new Promise((resolve) => p.run(() => resolve(undefined)))
  t.same(seen, Array.from({ length: 100 }, (_, i) => i))
  t.equal(p.waiting, 0)
})

t.test('a burst of slow items leaves the loop free between slices: a timer fires before the burst is done', async (t) => {
  const p = new TurnPacer(10)
  let done = 0
  for (let i = 0; i < 60; i++) p.run(() => { spin(2); done++ }) // 120 ms of work
  const atTimer = await new Promise<number>((resolve) => setTimeout(() => resolve(done), 1))
  t.ok(atTimer < 60, `the timer ran after ${atTimer} of 60 items, not after all of them`)
  await new Promise((resolve) => p.run(() => resolve(undefined)))
  t.equal(done, 60)
})

t.test('an item that throws does not stop the others', async (t) => {
  const p = new TurnPacer(5)
  let ran = 0
  p.run(() => { throw new Error('boom') })
  p.run(() => { ran++ })
  await new Promise((resolve) => p.run(() => resolve(undefined)))
  t.equal(ran, 1)
})
