// Shared by the security-* and hostile-* tests: the "still healthy" check that ends
// each abuse case, raw sockets, a seeded random source, a few HTTP calls.
import { connect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import type { IClientOptions } from 'mqtt'
import type { Test } from 'tap'
import { openHub, openMqtt, nextMqttMessage } from './gateway.js'

/**
 * In-process, the RSS holds tap and its TypeScript loader (~280 MB before any gateway):
 * what an abuse case may add on top of the RSS this module saw when it loaded.
 */
export const RSS_GROWTH_LIMIT_MB = 200
const BASELINE_MB = Math.round(process.memoryUsage.rss() / 1048576)

export interface HealthOptions {
  /** Query for the /ws client (e.g. { token }). */
  readonly hubQuery?: Record<string, string>
  /** Options for the MQTT client (e.g. username/password). */
  readonly mqtt?: IClientOptions
  /** Headers for /api/stats (where the RSS is read). */
  readonly statsHeaders?: Record<string, string>
  /** For a gateway in a child process: the bound on its whole RSS, in MB. */
  readonly rssLimitMb?: number
}

/**
 * A healthy /ws client and a healthy MQTT client still exchange a message both ways,
 * and the RSS (read from the gateway's /api/stats) stays under RSS_LIMIT_MB. Returns
 * the RSS in MB, printed with t.comment.
 */
export async function assertHealthy (t: Test, urls: { http: string, ws: string, mqtt: string }, what: string, opts: HealthOptions = {}): Promise<number> {
  const room = `health-${randomBytes(3).toString('hex')}`
  const hub = await openHub(t, urls.ws, { name: 'healthy', room, ...opts.hubQuery })
  await hub.waitJson('history')
  const mq = await openMqtt(t, urls.mqtt, { clientId: `healthy-${room}`, ...opts.mqtt })
  await mq.subscribeAsync(`chat/${room}`)
  const toMqtt = nextMqttMessage(mq, (topic, p) => topic === `chat/${room}` && p.toString().includes('from-ws'))
  hub.send({ type: 'chat', text: 'from-ws' })
  await toMqtt
  const toHub = hub.waitMessage(`chat/${room}`, (f) => f.payload === 'from-mqtt')
  await mq.publishAsync(`chat/${room}`, 'from-mqtt')
  await toHub
  const stats = await getJson(`${urls.http}/api/stats`, opts.statsHeaders)
  const rss = Math.round((stats.json.memory?.rss ?? process.memoryUsage.rss()) / 1048576)
  if (opts.rssLimitMb !== undefined) {
    t.comment(`after ${what}: a /ws and an MQTT client still exchange messages; gateway RSS ${rss} MB`)
    t.ok(rss < opts.rssLimitMb, `gateway RSS ${rss} MB stays under ${opts.rssLimitMb} MB after ${what}`)
  } else {
    t.comment(`after ${what}: a /ws and an MQTT client still exchange messages; RSS ${rss} MB (tap and the gateway; ${BASELINE_MB} MB at start)`)
    t.ok(rss - BASELINE_MB < RSS_GROWTH_LIMIT_MB, `RSS grew ${rss - BASELINE_MB} MB (under ${RSS_GROWTH_LIMIT_MB}) after ${what}`)
  }
  await hub.close()
  await mq.endAsync()
  return rss
}

export async function getJson (url: string, headers: Record<string, string> = {}): Promise<{ status: number, json: any, headers: Headers }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json, headers: res.headers }
}

export async function postJson (url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, json: any, headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000)
  })
  const text = await res.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json, headers: res.headers }
}

/** A seeded PRNG (mulberry32), so a failing run can be replayed from its printed seed. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** A raw TCP connection that records what it receives and when it closes. */
export class RawConn {
  readonly socket: Socket
  readonly received: Buffer[] = []
  readonly closed: Promise<void>
  readonly opened: Promise<void>
  closedAt: number | undefined

  constructor (port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.on('data', (d) => this.received.push(d))
    this.socket.on('error', () => {})
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve())
      this.socket.once('error', reject)
    })
    this.closed = new Promise((resolve) => this.socket.once('close', () => { this.closedAt = Date.now(); resolve() }))
  }

  get bytes (): Buffer { return Buffer.concat(this.received) }

  write (data: Buffer | Uint8Array): boolean {
    if (this.socket.destroyed) return false
    return this.socket.write(data)
  }

  /** Waits for `n` bytes received or the close, at most `ms`. */
  async waitBytes (n: number, ms: number): Promise<Buffer> {
    const t0 = Date.now()
    while (this.bytes.length < n && this.closedAt === undefined && Date.now() - t0 < ms) {
      await Promise.race([new Promise((resolve) => this.socket.once('data', resolve)), this.closed, new Promise((resolve) => setTimeout(resolve, ms - (Date.now() - t0)).unref())])
    }
    return this.bytes
  }

  /** Resolves true when the server closed the connection within `ms`. */
  async closedWithin (ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const r = await Promise.race([this.closed.then(() => true), new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms) })])
    clearTimeout(timer)
    return r
  }

  destroy (): void { this.socket.destroy() }
}

/** Port of a URL such as mqtt://127.0.0.1:1883. */
export function portOf (url: string): number {
  return Number(new URL(url).port)
}
