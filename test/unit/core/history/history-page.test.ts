import t from 'tap'
import { MemoryLevel } from 'memory-level'
import { HistoryLog } from '../../../../src/core/history/history-log.js'
import { pageAfter, pageLatest, ReadGate } from '../../../../src/core/history/history-page.js'

async function logWith (t: { teardown (fn: () => unknown): void }, sizes: number[]): Promise<HistoryLog> {
  const db = new MemoryLevel<string, Buffer>({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
  await db.open()
  const log = await HistoryLog.open(db as never, { maxPerTopic: 10_000 })
  t.teardown(async () => { await log.close(); await db.close() })
  let last: Promise<void> = Promise.resolve()
  sizes.forEach((n, i) => { last = log.append({ topic: 'a', payload: String(i).padEnd(n, 'x'), from: 'f', via: 'ws', ts: Date.now() }).stored })
  await last
  return log
}

t.test('pageAfter: at most limit, oldest first, more when there is a next page', async (t) => {
  const log = await logWith(t, Array(40).fill(10))
  const p1 = await pageAfter(log, 'a', 0, 25)
  t.same(p1.messages.map((m) => m.seq), Array.from({ length: 25 }, (_, i) => i + 1))
  t.equal(p1.more, true)
  const p2 = await pageAfter(log, 'a', 25, 25)
  t.same(p2.messages.map((m) => m.seq), Array.from({ length: 15 }, (_, i) => i + 26))
  t.equal(p2.more, false)
  t.same(await pageAfter(log, 'a', 40, 25), { messages: [], more: false })
  t.same((await pageAfter(log, 'a', 0, 16)).more, true, 'a page that ends on a chunk boundary still knows there is more')
})

t.test('pageAfter: cut by bytes, never empty while messages remain', async (t) => {
  const log = await logWith(t, [300_000, 300_000, 300_000, 300_000, 300_000, 2_000_000, 10])
  const p1 = await pageAfter(log, 'a', 0, 500)
  t.same(p1.messages.map((m) => m.seq), [1, 2, 3], '3 x 300 KB fit in 1 MiB, the 4th does not')
  t.equal(p1.more, true)
  const p2 = await pageAfter(log, 'a', 5, 500)
  t.same(p2.messages.map((m) => m.seq), [6], 'one message over the page size still comes, alone')
  t.equal(p2.more, true)
})

t.test('pageLatest: the newest that fit, oldest first; more when older ones were left out', async (t) => {
  const log = await logWith(t, [...Array(60).fill(10)])
  const p = await pageLatest(log, 'a', 50)
  t.same(p.messages.map((m) => m.seq), Array.from({ length: 50 }, (_, i) => i + 11))
  t.equal(p.more, true)
  const big = await logWith(t, [600_000, 600_000, 600_000, 10])
  const q = await pageLatest(big, 'a', 50)
  t.same(q.messages.map((m) => m.seq), [3, 4], 'bytes cut the oldest, the newest stay')
  t.equal(q.more, true)
  const all = await pageLatest(await logWith(t, [10, 10]), 'a', 50)
  t.same(all, { messages: all.messages, more: false })
  t.equal(all.messages.length, 2)
})

t.test('ReadGate: at most N at once, a bounded queue', async (t) => {
  const gate = new ReadGate(2, 1)
  let running = 0
  let peak = 0
  const releases: Array<() => void> = []
  const job = (): Promise<void> => gate.run(async () => {
    running++; peak = Math.max(peak, running)
    await new Promise<void>((resolve) => releases.push(resolve))
    running--
  })
  const a = job(); const b = job(); const c = job()
  await t.rejects(job(), { code: 'LIMIT_EXCEEDED' }, 'the queue is full')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(peak, 2)
  while (releases.length) { releases.shift()?.(); await new Promise((resolve) => setImmediate(resolve)) }
  await Promise.all([a, b, c])
  t.equal(peak, 2)
})
