// Test helpers: a real gateway in-process on port 0, real clients, teardown registered.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import WebSocket from 'ws'
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt'
import { createGateway, type Gateway, type GatewayUrls } from '../../src/index.js'

/** The subset of tap's Test that the helpers use. */
export interface T {
  teardown (fn: () => unknown): void
}

export interface Started { gateway: Gateway, urls: GatewayUrls, dataDir?: string }

/** Starts a gateway on 127.0.0.1, ports 0, memory store unless `dataDir`/`disk` is given. */
export async function startGateway (t: T, opts: Record<string, unknown> = {}): Promise<Started> {
  let dataDir: string | undefined
  const input: Record<string, unknown> = { host: '127.0.0.1', httpPort: 0, mqttPort: 0, heartbeatMs: 30_000, ...opts }
  if (opts.disk && !opts.dataDir) {
    dataDir = mkdtempSync(join(tmpdir(), 'fusion-test-'))
    input.dataDir = dataDir
    t.teardown(() => rmSync(dataDir as string, { recursive: true, force: true }))
  }
  delete input.disk
  if (!input.dataDir) input.memory = true
  const gateway = await createGateway(input)
  t.teardown(() => gateway.close())
  const urls = await gateway.listen()
  return { gateway, urls, dataDir }
}

export interface HubFrame { type: string, [k: string]: any }

/** A /ws client that records frames and waits for them. */
export class HubClient {
  readonly frames: Array<HubFrame | string> = []
  readonly ws: WebSocket
  closeCode: number | undefined
  #waiters = new Set<{ test: (f: HubFrame | string) => boolean, resolve: (f: any) => void }>()
  readonly closed: Promise<number>

  constructor (ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data, isBinary) => {
      const text = data.toString()
      let frame: HubFrame | string = text
      if (!isBinary && text.startsWith('{')) { try { frame = JSON.parse(text) } catch {} }
      this.frames.push(frame)
      for (const w of this.#waiters) if (w.test(frame)) { this.#waiters.delete(w); w.resolve(frame) }
    })
    this.closed = new Promise((resolve) => ws.on('close', (code) => { this.closeCode = code; resolve(code) }))
    ws.on('error', () => {})
  }

  /** The close code, or undefined when the connection is still open after `ms`: a test fails, never hangs. */
  closedWithin (ms: number): Promise<number | undefined> {
    let timer: NodeJS.Timeout | undefined
    return Promise.race([
      this.closed.finally(() => clearTimeout(timer)),
      new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms) })
    ])
  }

  send (frame: unknown): void { this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)) }

  json (type?: string): HubFrame[] {
    return this.frames.filter((f): f is HubFrame => typeof f === 'object' && (!type || f.type === type))
  }

  waitFor<F = HubFrame> (test: (f: HubFrame | string) => boolean, what = 'a frame', timeoutMs = 5000): Promise<F> {
    const found = this.frames.find(test)
    if (found !== undefined) return Promise.resolve(found as F)
    return new Promise((resolve, reject) => {
      const w = { test, resolve: (f: F) => { clearTimeout(timer); resolve(f) } }
      const timer = setTimeout(() => { this.#waiters.delete(w); reject(new Error(`timed out waiting for ${what}; last: ${JSON.stringify(this.frames.slice(-3)).slice(0, 600)}`)) }, timeoutMs)
      this.#waiters.add(w)
    })
  }

  waitJson (type: string, pred: (f: HubFrame) => boolean = () => true, timeoutMs?: number): Promise<HubFrame> {
    return this.waitFor((f) => typeof f === 'object' && f.type === type && pred(f), `a ${type} frame`, timeoutMs)
  }

  waitMessage (topic: string, pred: (f: HubFrame) => boolean = () => true): Promise<HubFrame> {
    return this.waitJson('message', (f) => f.topic === topic && pred(f))
  }

  /** Sends a frame with an id; resolves with the ack/error/pong answering it. */
  async request (frame: Record<string, unknown>): Promise<HubFrame> {
    const id = `r-${Math.random().toString(36).slice(2)}`
    const since = this.frames.length
    this.send({ ...frame, id })
    return this.waitFor((f) => typeof f === 'object' && f.id === id && this.frames.indexOf(f) >= since, `an answer to ${String(frame.type)}`) as Promise<HubFrame>
  }

  async subscribe (topic: string): Promise<void> {
    const a = await this.request({ type: 'subscribe', topic })
    if (a.type !== 'ack') throw new Error(`subscribe ${topic}: ${JSON.stringify(a)}`)
  }

  close (): Promise<number> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve(this.closeCode ?? 1006)
    this.ws.close()
    return this.closed
  }
}

/** Opens a /ws client (query: name, room, format...) and closes it at teardown. */
export async function openHub (t: T, wsUrl: string, query: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<HubClient> {
  const u = new URL(wsUrl)
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v)
  const ws = new WebSocket(u, { headers })
  const c = new HubClient(ws)
  t.teardown(() => c.close())
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
    ws.once('error', reject)
  })
  return c
}

/** An MQTT.js client (mqtt:// or ws://.../mqtt), ended at teardown. Races connect against close. */
export async function openMqtt (t: T, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  t.teardown(() => client.endAsync(true).catch(() => {}))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mqtt connect to ${url} timed out`)), 6000)
    client.once('connect', () => { clearTimeout(timer); resolve() })
    client.once('close', () => { clearTimeout(timer); reject(new Error(`mqtt connection to ${url} closed before CONNACK`)) })
    client.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
  return client
}

/** Waits for an MQTT message for which pred holds. */
export function nextMqttMessage (client: MqttClient, pred: (topic: string, payload: Buffer) => boolean = () => true, timeoutMs = 5000): Promise<{ topic: string, payload: Buffer, retain: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.off('message', on); reject(new Error('timed out waiting for an MQTT message')) }, timeoutMs)
    const on = (topic: string, payload: Buffer, packet: { retain: boolean }): void => {
      if (!pred(topic, payload)) return
      clearTimeout(timer)
      client.off('message', on)
      resolve({ topic, payload, retain: packet.retain })
    }
    client.on('message', on)
  })
}

/**
 * Whether an external program is present. In CI (CI=true) a missing program fails the
 * test; on a laptop the test is skipped with the reason.
 */
export function requireProgram (t: { fail: (msg: string) => unknown, comment: (...msg: any[]) => unknown }, program: string, pkg: string): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${program}`]).status === 0
  if (found) return true
  const msg = `${program} is not installed (Debian package ${pkg})`
  if (process.env.CI === 'true' || process.env.CI === '1') t.fail(`${msg}; CI must install it`)
  else t.comment(`SKIP: ${msg}`) // the caller returns early: on a laptop this is a skip with a reason
  return false
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
