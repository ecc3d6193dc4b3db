import t from 'tap'
import { MemoryLevel } from 'memory-level'
import { OutboundQueue, decodeMessage, encodeMessage } from '../../../../src/engine/upstream/outbound-queue.js'

const msg = (i: number, size = 1) => ({ topic: `t/${i}`, payload: Buffer.alloc(size, i % 256), qos: 1 as const, retain: i % 2 === 0 })

async function db () {
  const d = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
  await d.open()
  return d as any
}

t.test('encoding round trip', async (t) => {
  const m = { topic: 'a/ü', payload: Buffer.from([0, 1, 2]), qos: 1 as const, retain: true }
  t.same(decodeMessage(encodeMessage(m)), m)
  t.throws(() => decodeMessage(Buffer.from([1, 0, 9, 65])), /truncated/)
})

t.test('in order, in flight, acked, reloaded', async (t) => {
  const d = await db()
  const q = await OutboundQueue.open(d, 'a', { maxMessages: 100, maxBytes: 1 << 20 })
  await Promise.all([1, 2, 3, 4].map((i) => q.push(msg(i))))
  const a = q.take() as any
  const b = q.take() as any
  t.same([a.msg.topic, b.msg.topic], ['t/1', 't/2'])
  t.equal(q.inflight, 2)
  q.ack(a.seq)
  q.requeueInflight()
  t.equal((q.take() as any).msg.topic, 't/2', 'after a drop, the unacknowledged go first again')
  await q.close()
  const again = await OutboundQueue.open(d, 'a', { maxMessages: 100, maxBytes: 1 << 20 })
  t.equal(again.size, 3, 'what was not acknowledged is still there')
  t.same([1, 2, 3].map(() => (again.take() as any).msg.topic), ['t/2', 't/3', 't/4'])
  const other = await OutboundQueue.open(d, 'b', { maxMessages: 100, maxBytes: 1 << 20 })
  t.equal(other.size, 0, 'links do not share a queue')
})

t.test('bounded: drop-oldest by count and by bytes, counted', async (t) => {
  const d = await db()
  const q = await OutboundQueue.open(d, 'a', { maxMessages: 3, maxBytes: 1 << 20 })
  for (let i = 0; i < 5; i++) await q.push(msg(i))
  t.equal(q.size, 3)
  t.equal(q.dropped, 2)
  t.equal((q.take() as any).msg.topic, 't/2', 'the oldest went')
  const r = await OutboundQueue.open(d, 'b', { maxMessages: 1000, maxBytes: 2000 })
  for (let i = 0; i < 10; i++) await r.push(msg(i, 500))
  t.ok(r.bytes <= 2000, `bytes held ${r.bytes}`)
  t.equal(r.size + r.dropped, 10)
})

t.test('records past the hot budget are read back from disk in order', async (t) => {
  const d = await db()
  const q = await OutboundQueue.open(d, 'a', { maxMessages: 10_000, maxBytes: 1 << 24, hotBytes: 2000 })
  const N = 1200
  for (let i = 0; i < N; i++) void q.push(msg(i, 100))
  await q.flushed()
  const seen: string[] = []
  while (seen.length < N) {
    const n = q.take()
    if (n === undefined) break
    if (n === 'load') { await q.load(); continue }
    seen.push(n.msg.topic)
    q.ack(n.seq)
  }
  t.equal(seen.length, N)
  t.same(seen.slice(0, 3), ['t/0', 't/1', 't/2'])
  t.equal(seen[N - 1], `t/${N - 1}`)
  t.equal(q.size, 0)
})
