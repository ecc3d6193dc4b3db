// Issue 13 item 3: history replays cannot exhaust memory. 30 MB of chat history, then one
// anonymous /ws socket asks for 20 replays from the start and 10 parallel GET /api/history
// ask for everything: the gateway (its own process, defaults) stays within a bound, each
// replay comes as bounded pages, and a healthy pair keeps talking.
import t from 'tap'
import WebSocket from 'ws'
import { startCli } from '../helpers/cli.js'
import { openHub, openMqtt } from '../helpers/gateway.js'

const MESSAGES = 120
const SIZE = 250_000

async function rssMb (http: string): Promise<number> {
  const s = await (await fetch(`${http}/api/stats`)).json() as { memory: { rss: number } }
  return Math.round(s.memory.rss / 1048576)
}

t.test('parallel replays and history reads are paged and bounded in memory', async (t) => {
  const gw = await startCli(t, ['--memory'])
  const pub = await openMqtt(t, gw.urls.mqtt, { clientId: 'filler' })
  const text = 'y'.repeat(SIZE)
  for (let i = 0; i < MESSAGES; i++) await pub.publishAsync('chat/big', text, { qos: 1 })
  const probe = await (await fetch(`${gw.urls.http}/api/history?topic=chat/big&limit=1`)).json() as { lastSeq: number }
  t.equal(probe.lastSeq, MESSAGES, 'the history holds every message')
  const before = await rssMb(gw.urls.http)

  // 20 replays from the start on one socket: 2 run, the rest are refused LIMIT_EXCEEDED.
  const ws = new WebSocket(`${gw.urls.ws}?room=other`)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  t.teardown(() => ws.terminate())
  const frames: Array<Record<string, unknown>> = []
  ws.on('message', (d) => { frames.push(JSON.parse(String(d))) })
  for (let i = 0; i < 20; i++) ws.send(JSON.stringify({ type: 'subscribe', topic: 'chat/big', since: 0, id: `s${i}` }))
  const reads = Array.from({ length: 10 }, async () => {
    const r = await fetch(`${gw.urls.http}/api/history?topic=chat/big&limit=10000&since=0`)
    return await r.json() as { messages: unknown[], more?: boolean }
  })
  const pages = await Promise.all(reads)
  let peak = await rssMb(gw.urls.http)
  const deadline = Date.now() + 30_000
  while (frames.filter((f) => f.type === 'history-more').length < 1 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    peak = Math.max(peak, await rssMb(gw.urls.http))
  }
  t.comment(`RSS before ${before} MB, peak ${peak} MB during 20 replays + 10 reads of ${MESSAGES * SIZE / 1e6} MB each`)
  t.ok(peak - before < 150, `RSS grew by ${peak - before} MB (< 150 MB; unpaged, each read held the whole 30 MB)`)
  for (const p of pages) {
    t.ok(p.messages.length < MESSAGES && p.more === true, `/api/history answers one page (${p.messages.length} messages) and says more`)
  }
  const refused = frames.filter((f) => f.type === 'error' && f.code === 'LIMIT_EXCEEDED')
  t.ok(refused.length >= 1, `replays over the per-client limit are refused (${refused.length})`)
  const more = frames.find((f) => f.type === 'history-more') as { since: number } | undefined
  t.ok(more && more.since > 0 && more.since < MESSAGES, 'a history-more frame says where the next page starts')

  // The client asks for the next page and gets the messages after it.
  ws.send(JSON.stringify({ type: 'subscribe', topic: 'chat/big', since: more?.since ?? 0, id: 'next' }))
  const want = (more?.since ?? 0) + 1
  const until = Date.now() + 20_000
  while (!frames.some((f) => f.type === 'message' && f.seq === want) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(frames.some((f) => f.type === 'message' && f.seq === want), `the next page starts at seq ${want}`)

  // Still healthy: a /ws client and an MQTT client talk.
  const hub = await openHub(t, gw.urls.ws, { room: 'ok' })
  const got = hub.waitMessage('chat/ok')
  const m = await openMqtt(t, gw.urls.mqtt, { clientId: 'healthy' })
  await m.publishAsync('chat/ok', 'still here')
  t.equal((await got).payload, 'still here')
})
