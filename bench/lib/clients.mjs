// @ts-check
/**
 * Lean bench clients, one interface for the three kinds of door:
 *
 * - `mqtt://host:port`          MQTT 3.1.1 over TCP (net + a hand-written framer)
 * - `ws://host:port/mqtt`       MQTT 3.1.1 over WebSocket (subprotocol `mqtt`)
 * - `ws://host:port/<other>`    the plain WebSocket hub protocol of PROTOCOL.md
 *
 * MQTT.js spends more CPU per message than the brokers we measure, so the load
 * generator would become the bottleneck; these clients frame PUBLISH by hand, parse
 * incoming packets in place (no copy, no object per message) and coalesce the writes
 * of one tick into one socket write or one WebSocket frame.
 */
import net from 'node:net'
import mqttPacket from 'mqtt-packet'
import WebSocket from 'ws'
import { PAYLOAD_SIZE, isPayload, writePayload } from './payload.mjs'

/** @typedef {'mqtt' | 'mqtt-ws' | 'hub'} ClientKind */

/**
 * @typedef {object} BenchClient
 * @property {ClientKind} kind
 * @property {(filter: string, qos: 0 | 1) => Promise<void>} subscribe
 * @property {(topic: string, tsUs: number, seq: number, qos: 0 | 1) => void} publish
 * @property {((buf: Buffer, at: number) => void) | null} onPayload called with the buffer and the offset of a bench payload
 * @property {() => void} close
 * @property {Promise<void>} closed settles when the connection is gone
 * @property {string} [closeReason]
 */

/** @param {string} url @returns {ClientKind} */
export function kindOf (url) {
  const u = new URL(url)
  if (u.protocol === 'mqtt:' || u.protocol === 'tcp:') return 'mqtt'
  if (u.protocol === 'ws:' && u.pathname.endsWith('/mqtt')) return 'mqtt-ws'
  if (u.protocol === 'ws:') return 'hub'
  throw new Error(`unsupported URL ${url}: use mqtt://, ws://.../mqtt or ws://.../ws`)
}

/** Refuses anything that is not loopback: the bench never sends traffic elsewhere. @param {string} url */
export function assertLoopback (url) {
  const host = new URL(url).hostname
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') throw new Error(`bench targets loopback only, not ${host}`)
}

/**
 * @param {string} url
 * @param {{ clientId: string, timeoutMs?: number, keepalive?: number }} opts
 * @returns {Promise<BenchClient>}
 */
export function connect (url, opts) {
  assertLoopback(url)
  const kind = kindOf(url)
  const timeoutMs = opts.timeoutMs ?? 10_000
  const p = kind === 'hub' ? connectHub(url) : connectMqtt(url, kind, opts)
  return withTimeout(p, timeoutMs, `connect ${url}`)
}

/**
 * @template T
 * @param {Promise<T>} p @param {number} ms @param {string} what
 * @returns {Promise<T>}
 */
export function withTimeout (p, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer
  return Promise.race([
    p,
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

// ---------------------------------------------------------------- MQTT

const PUBACK_LEN = 4

/**
 * @param {string} url @param {'mqtt' | 'mqtt-ws'} kind
 * @param {{ clientId: string, keepalive?: number }} opts
 * @returns {Promise<BenchClient>}
 */
function connectMqtt (url, kind, opts) {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    /** @type {Buffer[]} */
    let out = []
    let flushQueued = false
    /** @type {(bufs: Buffer[]) => void} */
    let sendNow
    /** @type {() => void} */
    let destroy
    /** @type {(err?: Error) => void} */
    let onGone = () => {}
    const closed = new Promise((resolve) => { onGone = (err) => { client.closeReason ??= err?.message ?? 'closed'; resolve(undefined) } })

    const flush = () => {
      flushQueued = false
      const bufs = out
      out = []
      if (bufs.length) sendNow(bufs)
    }
    /** @param {Buffer} b */
    const send = (b) => {
      out.push(b)
      if (!flushQueued) { flushQueued = true; process.nextTick(flush) }
    }

    /** @type {Map<number, () => void>} */
    const pendingSub = new Map()
    let nextId = 1
    const takeId = () => { const id = nextId; nextId = nextId === 65535 ? 1 : nextId + 1; return id }
    /** @type {Map<string, Buffer>} */
    const topicBytes = new Map()
    let connected = false

    /** @type {BenchClient} */
    const client = {
      kind,
      onPayload: null,
      closed,
      subscribe (filter, qos) {
        const messageId = takeId()
        return new Promise((resolve) => {
          pendingSub.set(messageId, resolve)
          send(mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic: filter, qos }] }))
        })
      },
      publish (topic, tsUs, seq, qos) {
        let t = topicBytes.get(topic)
        if (!t) { t = Buffer.from(topic, 'utf8'); topicBytes.set(topic, t) }
        const rem = 2 + t.length + (qos ? 2 : 0) + PAYLOAD_SIZE
        const hdr = rem < 128 ? 2 : rem < 16384 ? 3 : 4
        const b = Buffer.allocUnsafe(hdr + rem)
        b[0] = 0x30 | (qos << 1)
        let i = 1
        let r = rem
        do { let byte = r % 128; r = Math.floor(r / 128); if (r > 0) byte |= 0x80; b[i++] = byte } while (r > 0)
        b[i++] = t.length >> 8; b[i++] = t.length & 0xff
        t.copy(b, i); i += t.length
        if (qos) { const id = takeId(); b[i++] = id >> 8; b[i++] = id & 0xff }
        writePayload(b, i, tsUs, seq)
        send(b)
      },
      close () {
        if (connected) { send(mqttPacket.generate({ cmd: 'disconnect' })); process.nextTick(() => setTimeout(destroy, 50)) } else destroy()
      }
    }

    // In-place framer: whole packets are handled straight out of the received chunk.
    /** @type {Buffer | null} */
    let rest = null
    /** @param {Buffer} chunk */
    const feed = (chunk) => {
      const buf = rest ? Buffer.concat([rest, chunk]) : chunk
      rest = null
      const len = buf.length
      let off = 0
      while (off + 2 <= len) {
        const first = buf[off]
        let i = off + 1
        let rem = 0
        let mul = 1
        let byte = 0
        let complete = false
        for (let k = 0; k < 4 && i < len; k++) {
          byte = buf[i++]
          rem += (byte & 0x7f) * mul
          mul *= 128
          if ((byte & 0x80) === 0) { complete = true; break }
        }
        if (!complete || i + rem > len) break
        const end = i + rem
        switch (first >> 4) {
          case 3: { // PUBLISH
            const qos = (first >> 1) & 3
            let p = i + 2 + buf.readUInt16BE(i)
            if (qos > 0) {
              const id = buf.readUInt16BE(p)
              p += 2
              const ack = Buffer.allocUnsafe(PUBACK_LEN)
              ack[0] = 0x40; ack[1] = 2; ack[2] = id >> 8; ack[3] = id & 0xff
              send(ack)
            }
            if (client.onPayload && end - p === PAYLOAD_SIZE && isPayload(buf, p)) client.onPayload(buf, p)
            break
          }
          case 2: // CONNACK
            if (buf[i + 1] !== 0) { fail(new Error(`CONNACK return code ${buf[i + 1]}`)); return }
            connected = true
            resolve(client)
            break
          case 9: { // SUBACK
            const id = buf.readUInt16BE(i)
            const done = pendingSub.get(id)
            pendingSub.delete(id)
            if (buf[i + 2] === 0x80) { fail(new Error('subscription refused (SUBACK 0x80)')); return }
            done?.()
            break
          }
          default: // PUBACK, PINGRESP: nothing to do
        }
        off = end
      }
      if (off < len) rest = buf.subarray(off)
    }
    /** @param {Error} err */
    const fail = (err) => { reject(err); onGone(err); destroy() }

    const connectPacket = mqttPacket.generate({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: opts.clientId,
      // Bench connections live for minutes at most; Aedes in the gateway refuses keepalive 0.
      keepalive: opts.keepalive ?? 600
    })

    if (kind === 'mqtt') {
      const socket = net.connect({ host: u.hostname, port: Number(u.port || 1883) })
      socket.setNoDelay(true)
      sendNow = (bufs) => {
        if (bufs.length === 1) { socket.write(/** @type {Buffer} */ (bufs[0])); return }
        socket.cork()
        for (const b of bufs) socket.write(b)
        socket.uncork()
      }
      destroy = () => socket.destroy()
      socket.on('connect', () => send(connectPacket))
      socket.on('data', feed)
      socket.on('error', (err) => { reject(err); onGone(err) })
      socket.on('close', () => { reject(new Error('closed before CONNACK')); onGone() })
    } else {
      const ws = new WebSocket(url, ['mqtt'], { perMessageDeflate: false, skipUTF8Validation: true })
      sendNow = (bufs) => {
        if (ws.readyState !== WebSocket.OPEN) return
        ws.send(bufs.length === 1 ? bufs[0] : Buffer.concat(bufs))
      }
      destroy = () => ws.terminate()
      ws.on('open', () => send(connectPacket))
      ws.on('message', (data) => feed(/** @type {Buffer} */ (data)))
      ws.on('error', (err) => { reject(err); onGone(err) })
      ws.on('close', () => { reject(new Error('closed before CONNACK')); onGone() })
    }
  })
}

// ---------------------------------------------------------------- /ws hub

const PAYLOAD_KEY = Buffer.from('"payload":"')

/** @param {string} url @returns {Promise<BenchClient>} */
function connectHub (url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true })
    /** @type {Map<string, () => void>} */
    const pendingSub = new Map()
    let nextId = 1
    /** @type {Map<string, { head: Buffer, tail: Buffer }>} */
    const frames = new Map()
    /** @type {(err?: Error) => void} */
    let onGone = () => {}
    const closed = new Promise((resolve) => { onGone = (err) => { client.closeReason ??= err?.message ?? 'closed'; resolve(undefined) } })

    /** @type {BenchClient} */
    const client = {
      kind: 'hub',
      onPayload: null,
      closed,
      subscribe (filter) {
        const id = `s${nextId++}`
        return new Promise((resolve) => {
          pendingSub.set(id, resolve)
          ws.send(JSON.stringify({ type: 'subscribe', topic: filter, id }))
        })
      },
      publish (topic, tsUs, seq, qos) {
        const key = `${topic}\u0000${qos}`
        let f = frames.get(key)
        if (!f) {
          f = {
            head: Buffer.from(`{"type":"publish","topic":${JSON.stringify(topic)},"payload":"`),
            tail: Buffer.from(qos ? '","qos":1}' : '"}')
          }
          frames.set(key, f)
        }
        const b = Buffer.allocUnsafe(f.head.length + PAYLOAD_SIZE + f.tail.length)
        f.head.copy(b, 0)
        writePayload(b, f.head.length, tsUs, seq)
        f.tail.copy(b, f.head.length + PAYLOAD_SIZE)
        if (ws.readyState === WebSocket.OPEN) ws.send(b, { binary: false })
      },
      close () { ws.close(1000) ; setTimeout(() => ws.terminate(), 500).unref() }
    }

    ws.on('message', (raw, isBinary) => {
      const data = /** @type {Buffer} */ (raw)
      if (isBinary) return
      const k = data.indexOf(PAYLOAD_KEY)
      if (k >= 0 && client.onPayload) {
        const at = k + PAYLOAD_KEY.length
        if (isPayload(data, at)) { client.onPayload(data, at); return }
      }
      /** @type {{ type?: string, id?: string, code?: string, message?: string }} */
      let frame
      try { frame = JSON.parse(data.toString('utf8')) } catch { return }
      if (frame.type === 'welcome') resolve(client)
      else if (frame.type === 'ack' && frame.id !== undefined) {
        const done = pendingSub.get(frame.id)
        pendingSub.delete(frame.id)
        done?.()
      } else if (frame.type === 'error') {
        client.closeReason = `${frame.code}: ${frame.message}`
      }
    })
    ws.on('error', (err) => { reject(err); onGone(err) })
    ws.on('close', (code) => { reject(new Error(`closed (${code}) before welcome`)); onGone(new Error(`closed with ${code}`)) })
  })
}
