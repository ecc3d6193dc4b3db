import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer, createWebSocketStream } from 'ws'
import { sendWritesAsOneFrame, wsSocket } from '../../../../src/engine/internals/index.js'

interface Pair { stream: Duplex, frames: Buffer[], received: Buffer[], next (): Promise<Buffer> }

/** `n` real WebSocket connections on loopback; the server side of each is a coalescing stream. */
async function pairs (t: { teardown (fn: () => unknown): void }, n: number): Promise<Pair[]> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
  await once(wss, 'listening')
  t.teardown(() => new Promise<void>((resolve) => { for (const c of wss.clients) c.terminate(); wss.close(() => resolve()) }))
  const port = (wss.address() as AddressInfo).port
  const out: Pair[] = []
  for (let i = 0; i < n; i++) {
    const accepted = once(wss, 'connection') as Promise<[WebSocket]>
    const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
    const received: Buffer[] = []
    const waiters: Array<(b: Buffer) => void> = []
    client.on('message', (data: Buffer) => { const w = waiters.shift(); if (w) w(data); else received.push(data) })
    await once(client, 'open')
    const [ws] = await accepted
    const stream = createWebSocketStream(ws)
    sendWritesAsOneFrame(stream, ws)
    // Every frame the stream hands to its socket, as the object it passed.
    const frames: Buffer[] = []
    const socket = wsSocket(ws) as { write (chunk: Buffer, cb: (err?: Error | null) => void): boolean }
    const write = socket.write.bind(socket)
    socket.write = (chunk, cb) => { frames.push(chunk); return write(chunk, cb) }
    out.push({ stream, frames, received, next: () => received.length ? Promise.resolve(received.shift() as Buffer) : new Promise((resolve) => waiters.push(resolve)) })
  }
  return out
}

t.test('the same chunks written to many streams go out as one frame object, with the right bytes', async (t) => {
  const [p1, p2, p3] = await pairs(t, 3) as [Pair, Pair, Pair]
  const head = Buffer.from('hello ')
  const body = Buffer.from('world')
  for (const p of [p1, p2, p3]) { p.stream.cork(); p.stream.write(head); p.stream.write(body); p.stream.uncork() }
  for (const p of [p1, p2, p3]) t.equal(String(await p.next()), 'hello world', 'one message with both writes')
  t.equal(p1.frames.length, 1)
  t.equal(p2.frames[0], p1.frames[0], 'the second stream wrote the first one\'s frame')
  t.equal(p3.frames[0], p1.frames[0], 'and so did the third')
})

t.test('other chunks, even with the same bytes, get a frame of their own and are never mixed up', async (t) => {
  const [p1, p2] = await pairs(t, 2) as [Pair, Pair]
  p1.stream.write(Buffer.from('one'))
  p2.stream.write(Buffer.from('two'))
  t.equal(String(await p1.next()), 'one')
  t.equal(String(await p2.next()), 'two', 'not the frame built for the other stream')
  const same = Buffer.from('same')
  p1.stream.write(same)
  p2.stream.write(Buffer.from('same'))
  t.equal(String(await p1.next()), 'same')
  t.equal(String(await p2.next()), 'same')
  t.not(p2.frames[1], p1.frames[1], 'equal bytes in another Buffer: built again (identity is what is compared)')
  // The order of the chunks is part of what is compared.
  const a = Buffer.from('a')
  const b = Buffer.from('b')
  p1.stream.cork(); p1.stream.write(a); p1.stream.write(b); p1.stream.uncork()
  p2.stream.cork(); p2.stream.write(b); p2.stream.write(a); p2.stream.uncork()
  t.equal(String(await p1.next()), 'ab')
  t.equal(String(await p2.next()), 'ba')
})

t.test('frames of every header size arrive whole; a big one is not kept for reuse', async (t) => {
  const [p1, p2] = await pairs(t, 2) as [Pair, Pair]
  for (const size of [0, 125, 126, 65535, 65536, 200_000]) {
    const chunk = Buffer.alloc(size, size % 251)
    p1.stream.write(chunk)
    p2.stream.write(chunk)
    const [r1, r2] = [await p1.next(), await p2.next()]
    t.equal(r1.length, size, `${size} bytes`)
    t.ok(r1.equals(chunk) && r2.equals(chunk), `${size} bytes intact on both`)
  }
  const last1 = p1.frames.at(-1)
  const last2 = p2.frames.at(-1)
  t.not(last2, last1, 'a 200 kB frame is built per stream, not held between writes')
})
