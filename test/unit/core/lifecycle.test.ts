import t from 'tap'
import { Lifecycle, withDeadline } from '../../../src/core/lifecycle.js'

t.test('stops run in reverse, once, and a failing stop never skips the rest', async (t) => {
  const logged: string[] = []
  const life = new Lifecycle((level, msg) => { logged.push(`${level} ${msg}`) })
  const order: string[] = []
  life.add('store', () => { order.push('store') })
  life.add('broker', async () => { order.push('broker'); throw new Error('boom') })
  life.add('doors', async () => { await new Promise((resolve) => setTimeout(resolve, 5)); order.push('doors') })
  const a = life.close()
  const b = life.close()
  t.equal(a, b, 'the same promise each time')
  await a
  t.same(order, ['doors', 'broker', 'store'])
  t.same(logged, ['warn close: broker failed'])
  t.ok(life.closing)
  t.throws(() => life.add('late', () => {}), /after close/)
})

t.test('withDeadline resolves at the deadline when the promise does not', async (t) => {
  const t0 = Date.now()
  await withDeadline(new Promise(() => {}), 30)
  t.ok(Date.now() - t0 < 1000)
  await withDeadline(Promise.resolve(), 10_000)
})
