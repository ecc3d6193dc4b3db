// Bytes on the wire, counted from what the page itself sends and receives.
//
// A WebSocket frame (RFC 6455 section 5.2) is 2 bytes of header, plus 2 more when the
// payload is 126..65535 bytes, or 8 more beyond that, plus the 4-byte masking key
// that every client-to-server frame carries (section 5.3). Browsers do not show
// frames, but each `send()` is one frame and each `message` event is one frame here,
// because the gateway turns off permessage-deflate and does not fragment.

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** UTF-8 length of a string, or the length of binary data. */
export function byteLength (data) {
  if (typeof data === 'string') return encoder.encode(data).length
  if (data instanceof ArrayBuffer) return data.byteLength
  if (ArrayBuffer.isView(data)) return data.byteLength
  if (data instanceof Blob) return data.size
  return 0
}

/**
 * Header bytes of one WebSocket frame carrying `payloadLength` bytes.
 * @param {number} payloadLength
 * @param {boolean} masked true for client-to-server frames
 */
export function wsHeaderBytes (payloadLength, masked) {
  const base = payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10
  return base + (masked ? 4 : 0)
}

/** Whole frame size: header plus payload. */
export function wsFrameBytes (payloadLength, masked) {
  return wsHeaderBytes(payloadLength, masked) + payloadLength
}

/** MQTT control packet types (MQTT 3.1.1 section 2.2.1). */
export const MQTT_TYPE = Object.freeze({
  1: 'CONNECT', 2: 'CONNACK', 3: 'PUBLISH', 4: 'PUBACK', 5: 'PUBREC', 6: 'PUBREL', 7: 'PUBCOMP',
  8: 'SUBSCRIBE', 9: 'SUBACK', 10: 'UNSUBSCRIBE', 11: 'UNSUBACK', 12: 'PINGREQ', 13: 'PINGRESP', 14: 'DISCONNECT'
})

/**
 * Cuts one direction of an MQTT byte stream into packets. The stream arrives in
 * WebSocket frames that need not match packet boundaries (the gateway writes a
 * PUBLISH as several frames), so each frame's header bytes are charged to the packet
 * that the frame's bytes complete or continue.
 */
export class MqttSplitter {
  #buf = new Uint8Array(0)
  #framing = 0
  #frames = 0
  /** @param {(p: MqttPacketInfo) => void} onPacket */
  constructor (onPacket) { this.onPacket = onPacket }

  /**
   * @param {Uint8Array} bytes the payload of one WebSocket frame
   * @param {number} headerBytes that frame's header size
   */
  push (bytes, headerBytes) {
    this.#framing += headerBytes
    this.#frames++
    const joined = new Uint8Array(this.#buf.length + bytes.length)
    joined.set(this.#buf, 0)
    joined.set(bytes, this.#buf.length)
    this.#buf = joined
    for (;;) {
      const head = readFixedHeader(this.#buf)
      if (!head || this.#buf.length < head.total) break
      const packet = this.#buf.subarray(0, head.total)
      this.#buf = this.#buf.slice(head.total)
      const info = describePacket(packet, head)
      info.framing = this.#framing
      info.frames = this.#frames
      info.wire = packet.length + this.#framing
      this.#framing = 0
      this.#frames = 0
      this.onPacket(info)
    }
  }

  reset () { this.#buf = new Uint8Array(0); this.#framing = 0; this.#frames = 0 }
}

/**
 * @typedef {object} MqttPacketInfo
 * @property {string} type CONNECT, PUBLISH...
 * @property {number} size MQTT packet bytes (fixed header + remaining length)
 * @property {number} wire size plus the WebSocket framing charged to it
 * @property {number} framing WebSocket header bytes charged to it
 * @property {number} frames WebSocket frames that carried it
 * @property {string} [topic] PUBLISH only
 * @property {string} [payload] PUBLISH only, as UTF-8
 * @property {number} [payloadBytes] PUBLISH only
 * @property {number} [qos] PUBLISH only
 */

/** Fixed header: type byte plus the 1..4 byte remaining length (section 2.2.3). */
function readFixedHeader (buf) {
  if (buf.length < 2) return undefined
  let remaining = 0
  let multiplier = 1
  for (let i = 1; i <= 4; i++) {
    if (buf.length <= i) return undefined
    const b = buf[i]
    remaining += (b & 0x7f) * multiplier
    if ((b & 0x80) === 0) return { type: buf[0] >> 4, flags: buf[0] & 0x0f, headerLength: i + 1, total: i + 1 + remaining }
    multiplier *= 128
  }
  throw new Error('malformed MQTT remaining length')
}

function describePacket (packet, head) {
  /** @type {MqttPacketInfo} */
  const info = { type: MQTT_TYPE[head.type] ?? `type-${head.type}`, size: packet.length, wire: 0, framing: 0, frames: 0 }
  if (head.type === 3) {
    let at = head.headerLength
    const topicLength = (packet[at] << 8) | packet[at + 1]
    at += 2
    info.topic = decoder.decode(packet.subarray(at, at + topicLength))
    at += topicLength
    info.qos = (head.flags >> 1) & 3
    if (info.qos > 0) at += 2 // packet identifier
    const body = packet.subarray(at)
    info.payloadBytes = body.length
    info.payload = decoder.decode(body)
  }
  return info
}

/** Bytes of `data` as a Uint8Array (MQTT.js hands `send` a Buffer or Uint8Array). */
export function asBytes (data) {
  if (typeof data === 'string') return encoder.encode(data)
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return new Uint8Array(0)
}
