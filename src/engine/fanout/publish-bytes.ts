import type { Writable } from 'node:stream'

/**
 * MQTT 3.1.1 PUBLISH packets (section 3.3) built once per message, not once per
 * subscriber.
 *
 * Every subscriber of a message gets the same bytes but for two fields: the QoS bits
 * of the first byte, and the packet id that QoS 1 and 2 carry after the topic. So a
 * message is encoded once: a QoS 0 copy is one Buffer written to every subscriber, and a
 * QoS 1/2 copy is a shared head (fixed header, topic) with this subscriber's two id
 * bytes, then the shared payload.
 *
 * Flags [MQTT-3.3.1]: DUP is 0, since every copy written here is a first transmission
 * (a retransmission is the stock path's, for persistent sessions) and the DUP of the
 * incoming PUBLISH is not propagated [MQTT-3.3.1-3]; it must be 0 for QoS 0
 * [MQTT-3.3.1-2]. RETAIN is the delivery's own: 1 only for a retained message sent
 * because of a new subscription, 0 on live deliveries [MQTT-3.3.1-9] (Aedes clears it on
 * live copies before they reach us).
 */

/** What the encoding is made from: an aedes-packet `Packet` has all of it. */
export interface Publishable {
  readonly topic: string
  readonly payload: Buffer | string
  readonly retain: boolean
  readonly brokerId?: string | null | undefined
  readonly brokerCounter?: number | undefined
}

/** [MQTT-2.2.3] the Remaining Length has at most four bytes. */
const MAX_REMAINING = 268_435_455
/** [MQTT-1.5.3] a UTF-8 string is at most 65,535 bytes. */
const MAX_STRING = 65_535
/** A QoS 1/2 copy up to this size is one buffer; above it the payload is written shared. */
const COPY_WHOLE_UP_TO = 1024

function remainingLengthSize (n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4
}

function writeRemainingLength (buf: Buffer, at: number, n: number): number {
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    buf[at++] = byte
  } while (n > 0)
  return at
}

/** One message's PUBLISH encodings, built on first use and shared by its subscribers. */
export class PublishEncoding {
  readonly topic: string
  readonly payloadRef: Buffer | string
  readonly retain: boolean
  readonly brokerId: string | null | undefined
  readonly brokerCounter: number | undefined
  readonly #topicBytes: number
  readonly #payload: Buffer
  #qos0: Buffer | undefined
  // The head (fixed header + topic, without the id) of the QoS 1 and the QoS 2 copy.
  #head1: Buffer | undefined
  #head2: Buffer | undefined

  private constructor (p: Publishable, topicBytes: number, payload: Buffer) {
    this.topic = p.topic
    this.payloadRef = p.payload
    this.retain = p.retain
    this.brokerId = p.brokerId
    this.brokerCounter = p.brokerCounter
    this.#topicBytes = topicBytes
    this.#payload = payload
  }

  /** The encoding of `p`, or undefined when it cannot be a 3.1.1 PUBLISH (then the stock path decides). */
  static of (p: Publishable): PublishEncoding | undefined {
    if (typeof p.topic !== 'string') return undefined
    const payload = typeof p.payload === 'string' ? Buffer.from(p.payload, 'utf8') : p.payload
    if (!Buffer.isBuffer(payload)) return undefined
    const topicBytes = Buffer.byteLength(p.topic, 'utf8')
    if (topicBytes > MAX_STRING || 2 + topicBytes + 2 + payload.length > MAX_REMAINING) return undefined
    return new PublishEncoding(p, topicBytes, payload)
  }

  /** True when this encoding was made from the same message as `p`. */
  matches (p: Publishable): boolean {
    return p.payload === this.payloadRef && p.topic === this.topic && p.retain === this.retain &&
      p.brokerCounter === this.brokerCounter && p.brokerId === this.brokerId
  }

  /** The whole QoS 0 PUBLISH, the same Buffer for every subscriber (never modify it). */
  qos0 (): Buffer {
    return (this.#qos0 ??= this.#build(0, undefined))
  }

  /**
   * Writes the QoS 1 or 2 PUBLISH with packet id `id` to `stream`; returns what the
   * last `write()` returned (false: wait for 'drain', or the stream was cut).
   */
  writeWithId (stream: Writable, qos: 1 | 2, id: number): boolean {
    const payload = this.#payload
    const head = qos === 1 ? (this.#head1 ??= this.#head(1)) : (this.#head2 ??= this.#head(2))
    if (head.length + 2 + payload.length <= COPY_WHOLE_UP_TO) {
      const buf = Buffer.allocUnsafe(head.length + 2 + payload.length)
      head.copy(buf, 0)
      buf.writeUInt16BE(id, head.length)
      payload.copy(buf, head.length + 2)
      return stream.write(buf)
    }
    const first = Buffer.allocUnsafe(head.length + 2)
    head.copy(first, 0)
    first.writeUInt16BE(id, head.length)
    if (!stream.write(first) && (stream.destroyed || payload.length === 0)) return false
    return payload.length === 0 ? true : stream.write(payload)
  }

  /** The whole PUBLISH at `qos` with `id` (tests, and a reference for writeWithId). */
  bytes (qos: 0 | 1 | 2, id?: number): Buffer {
    return this.#build(qos, id)
  }

  #head (qos: 1 | 2): Buffer {
    const remaining = 2 + this.#topicBytes + 2 + this.#payload.length
    const buf = Buffer.allocUnsafe(1 + remainingLengthSize(remaining) + 2 + this.#topicBytes)
    this.#writeHead(buf, qos, remaining)
    return buf
  }

  #build (qos: 0 | 1 | 2, id: number | undefined): Buffer {
    const idBytes = qos > 0 ? 2 : 0
    const remaining = 2 + this.#topicBytes + idBytes + this.#payload.length
    const buf = Buffer.allocUnsafe(1 + remainingLengthSize(remaining) + remaining)
    let at = this.#writeHead(buf, qos, remaining)
    if (qos > 0) at = buf.writeUInt16BE(id ?? 0, at)
    this.#payload.copy(buf, at)
    return buf
  }

  /** Fixed header and topic name; returns the offset after the topic. */
  #writeHead (buf: Buffer, qos: 0 | 1 | 2, remaining: number): number {
    // 0x30: PUBLISH; bit 3 DUP (0 here), bits 2-1 QoS, bit 0 RETAIN.
    buf[0] = 0x30 | (qos << 1) | (this.retain ? 1 : 0)
    let at = writeRemainingLength(buf, 1, remaining)
    at = buf.writeUInt16BE(this.#topicBytes, at)
    at += buf.write(this.topic, at, 'utf8')
    return at
  }
}

let last: PublishEncoding | undefined

/**
 * The encoding of the message `p` is a copy of. Aedes's router hands a message to its
 * subscribers one after the other, so the encoding of the last message is kept and
 * reused while copies of it arrive; any other message replaces it. Undefined when `p`
 * cannot be encoded as a 3.1.1 PUBLISH.
 */
export function encodingOf (p: Publishable): PublishEncoding | undefined {
  if (last?.matches(p)) return last
  const made = PublishEncoding.of(p)
  if (made) last = made
  return made
}
