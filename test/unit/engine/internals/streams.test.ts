// internals: stream-io. Node 26's `read()` returns one buffered chunk where Node 20 to 24
// return them all, and Aedes reads once per 'readable': a packet split over two buffered
// chunks would wait for ever. readWholeBuffer gives Aedes the contract it was written for.
import t from 'tap'
import { PassThrough } from 'node:stream'
import { readWholeBuffer } from '../../../../src/engine/internals/index.js'

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
