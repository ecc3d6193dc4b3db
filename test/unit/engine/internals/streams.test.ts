// internals: stream-io. Node 26's `read()` returns one buffered chunk where Node 20 to 24
// return them all, and Aedes reads once per 'readable': a packet split over two buffered
// chunks would wait for ever. readWholeBuffer gives Aedes the contract it was written for.
import t from 'tap'
import { PassThrough } from 'node:stream'
import { afterEachWrite, gateReads, readWholeBuffer } from '../../../../src/engine/internals/index.js'

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('read() returns every buffered chunk as one buffer, then null', async (t) => {
  const s = new PassThrough()
  readWholeBuffer(s)
  s.write('ab'); s.write('cd'); s.write('e')
  await tick()
  t.equal(String(s.read()), 'abcde', 'three writes, one read')
  t.equal(s.read(), null)
})

t.test('read(size) is left as Node does it', async (t) => {
  const s = new PassThrough()
  readWholeBuffer(s)
  s.write('abcd'); s.write('ef')
  await tick()
  t.equal(String(s.read(3)), 'abc')
  t.equal(String(s.read()), 'def')
})

t.test('a chunk left buffered after a read is not stranded (one read(null) per readable, as Aedes does)', async (t) => {
  const s = new PassThrough()
  readWholeBuffer(s)
  const seen: string[] = []
  s.on('readable', () => { const b = s.read(null as unknown as undefined) as Buffer | null; if (b) seen.push(String(b)) })
  s.write('a'); s.write('b')
  await tick()
  t.same(seen, ['ab'])
  t.equal(s.readableLength, 0)
})

t.test('a read gate over the whole-buffer read: both apply, in that order, and a refusal destroys the stream', async (t) => {
  const s = new PassThrough()
  readWholeBuffer(s)
  let open = false
  const taken: string[] = []
  gateReads(s, {
    open: () => open,
    take: (chunk) => { taken.push(String(chunk)); return String(chunk).includes('!') ? -1 : 2 }
  })
  s.write('ab'); s.write('cd')
  await tick()
  t.equal(s.read(), null, 'a closed gate reads nothing')
  t.equal(s.readableLength, 4, 'and leaves the bytes in the stream')
  open = true
  t.equal(String(s.read()), 'ab', 'the gate gets the whole buffer and takes two bytes')
  t.same(taken, ['abcd'])
  t.equal(String(s.read()), 'cd', 'the rest went back to the stream')
  s.write('x!')
  await tick()
  t.equal(s.read(), null)
  t.ok(s.destroyed, '-1 destroys the stream')
})

t.test('afterEachWrite wraps a write that is already the stream\'s own, and decides what write returns', async (t) => {
  const chunks: string[] = []
  const s = new PassThrough()
  const seenByOwn: string[] = []
  const own = s.write.bind(s)
  s.write = ((chunk: unknown, encoding?: unknown, cb?: unknown) => { seenByOwn.push(String(chunk)); return (own as (...a: unknown[]) => boolean)(chunk, encoding, cb) }) as typeof s.write
  s.on('data', (c) => chunks.push(String(c)))
  let answer = true
  afterEachWrite(s, { afterWrite: (stream) => { t.equal(stream, s); return answer } })
  t.equal(s.write('a'), true)
  answer = false
  let called = false
  t.equal(s.write('b', () => { called = true }), false, 'the rule\'s answer, not the stream\'s')
  await tick()
  t.same(seenByOwn, ['a', 'b'], 'the earlier wrapper still sees every write')
  t.same(chunks, ['a', 'b'])
  t.ok(called, 'the callback is passed on')
})
