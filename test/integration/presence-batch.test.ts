// Presence at scale (issue 14): `?presence=batch` clients get one roster frame on joining
// (the count and the most recent clients) and then at most one `presence-batch` frame per
// interval; older clients keep their `presence` frames, bounded per interval; the rest of
// the roster is paged over HTTP.
import t from 'tap'
import { openHub, openMqtt, startGateway, type HubClient, type HubFrame } from '../helpers/gateway.js'

const JOINS = 40

async function joinMany (t: Parameters<typeof startGateway>[0], url: string, n: number, prefix: string): Promise<HubClient[]> {
  const out: HubClient[] = []
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    const c = await openHub(t, url, { name: `${prefix}-${i}`, presence: '0' })
    await c.waitJson('history')
    out.push(c)
  }))
  return out
}

t.test('a batch client: a bounded roster with the count, then one frame per interval for a storm', async (t) => {
  const { urls } = await startGateway(t, { presenceIntervalMs: 400, presenceRoster: 5, maxConnectionsPerIp: 1000, connectRate: 100_000 })
  await joinMany(t, urls.ws, 8, 'early')
  const watcher = await openHub(t, urls.ws, { name: 'watcher', presence: 'batch' })
  const snap = await watcher.waitJson('presence-batch', (f) => f.snapshot === true)
  t.equal(snap.online, 8, 'the count covers everyone online')
  t.equal(snap.joined.length, 5, 'the roster lists the most recent --presence-roster clients')
  t.equal(snap.joined[0].name, 'early-7', 'most recent first')
  t.same(Object.keys(snap.joined[0]).sort(), ['clientId', 'name', 'ts', 'via'])
  t.equal(watcher.json('presence').length, 0, 'no single presence frames for a batch client')

  // The watcher's own join, then a storm of joins.
  await joinMany(t, urls.ws, JOINS, 'storm')
  const last = await watcher.waitJson('presence-batch', (f) => f.online === 8 + 1 + JOINS, 5000)
  const batches = watcher.json('presence-batch').filter((f) => !f.snapshot)
  t.ok(batches.length <= 6, `${JOINS} joins reached the watcher in ${batches.length} frames`)
  for (const b of batches) t.ok(b.joined.length <= 5, 'each frame lists at most --presence-roster joins')
  const listed = batches.reduce((a, b) => a + b.joined.length + (b.more?.joined ?? 0), 0)
  t.ok(listed >= JOINS, 'every join is counted: listed or in more.joined')
  t.ok(last.joined.length > 0)

  // Leaves: ids only.
  const leaver = await openHub(t, urls.ws, { name: 'leaver', presence: '0' })
  const welcome = await leaver.waitJson('welcome')
  await watcher.waitJson('presence-batch', (f) => f.joined.some((j: HubFrame) => j.clientId === welcome.clientId))
  leaver.ws.close()
  const gone = await watcher.waitJson('presence-batch', (f) => f.left.includes(welcome.clientId))
  t.equal(gone.online, 8 + 1 + JOINS)
})

t.test('an older client keeps its presence frames, at most 16 per interval', async (t) => {
  const { urls } = await startGateway(t, { presenceIntervalMs: 2000, maxConnectionsPerIp: 1000, connectRate: 100_000 })
  const old = await openHub(t, urls.ws, { name: 'old' })
  await old.waitJson('history')
  // The old client's own join took the leading edge of this interval; the next join comes
  // at its end, in the old frame.
  await old.waitJson('presence')
  const one = await openHub(t, urls.ws, { name: 'one', presence: '0' })
  const w1 = await one.waitJson('welcome')
  const f = await old.waitJson('presence', (p) => p.clientId === w1.clientId, 4000)
  t.same(Object.keys(f).sort(), ['clientId', 'name', 'status', 'ts', 'type', 'via'])
  t.equal(f.status, 'online')
  // A storm within the next interval: one flush at its end, at most 16 frames.
  const before = old.json('presence').length
  await joinMany(t, urls.ws, JOINS, 'storm')
  // A marker joins after the storm: its frame comes in the flush after the storm's.
  const marker = await openHub(t, urls.ws, { name: 'marker', presence: '0' })
  const wm = await marker.waitJson('welcome')
  await old.waitJson('presence', (p) => p.clientId === wm.clientId, 5000)
  const frames = old.json('presence')
  const got = frames.findIndex((p) => p.clientId === wm.clientId) - before
  // The storm lands in one interval, or two if it straddles a flush.
  t.ok(got > 0 && got <= 32, `${JOINS} joins: ${got} presence frames before the marker (<= 16 per interval)`)
})

t.test('GET /api/presence pages through everyone, bounded', async (t) => {
  const { urls } = await startGateway(t, { maxConnectionsPerIp: 1000, connectRate: 100_000 })
  await joinMany(t, urls.ws, 12, 'p')
  const dev = await openMqtt(t, urls.mqtt, { clientId: 'dev-1' })
  t.ok(dev.connected)
  // Presence is retained through the broker: wait until the last one is in.
  let page: any
  for (let i = 0; i < 50; i++) {
    page = await (await fetch(`${urls.http}/api/presence?limit=5`)).json()
    if (page.online === 13) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(page.online, 13)
  t.equal(page.clients.length, 5)
  const all: string[] = []
  for (let offset = 0; offset < 13; offset += 5) {
    const r = await (await fetch(`${urls.http}/api/presence?offset=${offset}&limit=5`)).json() as { clients: Array<{ clientId: string }> }
    all.push(...r.clients.map((c) => c.clientId))
  }
  t.equal(new Set(all).size, 13, 'the pages list everyone once')
  t.ok(all.includes('dev-1'), 'MQTT devices are listed too')
  for (const q of ['limit=501', 'limit=0', 'offset=-1', 'offset=1e3', `offset=${'9'.repeat(40)}`]) {
    const r = await fetch(`${urls.http}/api/presence?${q}`)
    t.equal(r.status, 400, `${q} is refused`)
    t.equal(((await r.json()) as { code: string }).code, 'BAD_FRAME')
  }
})
