// The tracker's roster (issue 14): most recent first, paged, in O(offset + limit), and
// still right after many clients came, went and came back (the compaction of dead slots).
import t from 'tap'
import { PresenceTracker } from '../../../src/engine/presence.js'
import type { Bridge, Sink } from '../../../src/engine/bridge.js'

function fakeBridge (): Bridge {
  let sink: Sink | undefined
  return {
    async subscribe (_filter: string, s: Sink) { sink = s },
    async retained () { return [] },
    async publish (req: { topic: string, payload: Buffer }) {
      const text = req.payload.toString()
      sink?.deliver({ topic: req.topic, payload: req.payload, text, encoding: undefined, via: 'ws', ts: Date.now() } as any, 'presence/+')
    }
  } as unknown as Bridge
}

t.test('most recent first, paged, right after churn', async (t) => {
  const p = new PresenceTracker(fakeBridge())
  await p.start()
  const expected: string[] = [] // oldest first
  const online = async (id: string): Promise<void> => {
    await p.announce(id, 'online', id, 'ws')
    const i = expected.indexOf(id)
    if (i >= 0) expected.splice(i, 1)
    expected.push(id)
  }
  const offline = async (id: string): Promise<void> => {
    await p.announce(id, 'offline', id, 'ws')
    const i = expected.indexOf(id)
    if (i >= 0) expected.splice(i, 1)
  }
  for (let i = 0; i < 3000; i++) await online(`c${i}`)
  // Churn: two thirds leave, some come back (past the compaction threshold several times).
  for (let i = 0; i < 3000; i++) if (i % 3 !== 0) await offline(`c${i}`)
  for (let i = 0; i < 3000; i += 7) await online(`c${i}`)
  t.equal(p.count, expected.length)
  const newestFirst = [...expected].reverse()
  t.same(p.online(50).map((x) => x.clientId), newestFirst.slice(0, 50), 'the most recent 50')
  const all: string[] = []
  for (let off = 0; off < p.count; off += 97) all.push(...p.page(off, 97).map((x) => x.clientId))
  t.same(all, newestFirst, 'the pages are everyone, newest first, once')
  t.same(p.page(p.count, 10), [], 'past the end: nothing')
  t.same(p.page(0, 0), [])
})
