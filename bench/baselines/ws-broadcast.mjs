// @ts-check
/**
 * Baseline: the least a Node WebSocket hub can do, on ws 8 alone. It speaks the
 * subset of the /ws hub protocol the bench uses and does the same job: a client
 * subscribes to a topic (`+`/`#` filters work), and every published message is
 * serialised once into a `message` frame and the same buffer is sent to every
 * subscriber. No broker, no ACL, no history, no backpressure policy: what
 * a hub built on ws reaches with plain `send()` calls.
 *
 * A client that connects with `?cork=1` gets its frames corked until the end of the
 * tick (one writev per client per tick, as the gateway's hub does since issue 7): the
 * same server with the one trick that moves the limit, shown beside it.
 *
 *   node bench/baselines/ws-broadcast.mjs [--host 127.0.0.1]
 * prints `ws-broadcast ready ws=ws://.../ws ws-corked=ws://.../ws?cork=1`.
 */
import http from 'node:http'
import { once } from 'node:events'
import { WebSocketServer } from 'ws'

const host = process.argv.includes('--host') ? String(process.argv[process.argv.indexOf('--host') + 1]) : '127.0.0.1'

/** @type {Map<string, Set<import('ws').WebSocket>>} */
const byFilter = new Map()

/** MQTT filter match. @param {string} filter @param {string} topic */
function matches (filter, topic) {
  if (filter === topic) return true
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

const server = http.createServer((_req, res) => { res.statusCode = 404; res.end() })
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: true })
let nextId = 1
/** @param {import('ws').WebSocket} ws @param {{ _socket?: { cork (): void, uncork (): void } }} raw */
function corkForTick (ws, raw) {
  const socket = raw._socket
  if (!socket || corked.has(ws)) return
  corked.add(ws)
  socket.cork()
  process.nextTick(() => { corked.delete(ws); socket.uncork() })
}
/** @type {WeakSet<import('ws').WebSocket>} */
const corked = new WeakSet()
/** @type {WeakSet<import('ws').WebSocket>} */
const wantsCork = new WeakSet()

wss.on('connection', (ws, req) => {
  if (new URL(req.url ?? '/', 'http://x').searchParams.get('cork') === '1') wantsCork.add(ws)
  const clientId = `raw-${nextId++}`
  /** @type {Set<string>} */
  const mine = new Set()
  ws.send(JSON.stringify({ type: 'welcome', clientId, server: 'ws-broadcast' }))
  ws.on('message', (data, isBinary) => {
    if (isBinary) return
    /** @type {{ type?: string, topic?: string, payload?: string, id?: string, qos?: number }} */
    let frame
    try { frame = JSON.parse(String(data)) } catch { return }
    if (typeof frame.topic !== 'string') return
    if (frame.type === 'subscribe') {
      let set = byFilter.get(frame.topic)
      if (!set) { set = new Set(); byFilter.set(frame.topic, set) }
      set.add(ws)
      mine.add(frame.topic)
      ws.send(JSON.stringify({ type: 'ack', id: frame.id }))
    } else if (frame.type === 'publish') {
      const out = Buffer.from(JSON.stringify({
        type: 'message', topic: frame.topic, payload: frame.payload, from: clientId, via: 'ws', ts: Date.now(), qos: frame.qos ?? 0, retain: false
      }))
      /** @type {Set<import('ws').WebSocket> | undefined} */
      let only
      /** @type {Set<import('ws').WebSocket> | undefined} */
      let merged
      for (const [filter, set] of byFilter) {
        if (!matches(filter, frame.topic)) continue
        if (!only) only = set
        else { merged ??= new Set(only); for (const s of set) merged.add(s) }
      }
      for (const s of merged ?? only ?? []) {
        if (wantsCork.has(s)) corkForTick(s, /** @type {any} */ (s))
        s.send(out, { binary: false })
      }
    }
  })
  ws.on('error', () => {})
  ws.on('close', () => {
    for (const f of mine) {
      const set = byFilter.get(f)
      set?.delete(ws)
      if (set?.size === 0) byFilter.delete(f)
    }
  })
})

server.listen(0, host)
await once(server, 'listening')
const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port
process.stdout.write(`ws-broadcast ready ws=ws://${host}:${port}/ws ws-corked=ws://${host}:${port}/ws?cork=1\n`)

const stop = () => {
  for (const ws of wss.clients) ws.terminate()
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 1000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
