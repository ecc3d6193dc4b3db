/**
 * Aedes 1.x (and MQTT.js for MQTT 3.1.1) has no maximum packet size: its parser would
 * buffer whatever length a fixed header declares (up to 256 MB). This follows the fixed headers as bytes pass
 * and reports a packet that declares more than `maxPacket` bytes before its body
 * arrives.
 */
export class MqttLengthGuard {
  readonly #max: number
  #skip = 0
  #headerLen = 0
  #len = 0
  #mul = 1

  constructor (maxPacket: number) { this.#max = maxPacket }

  /** Feeds bytes in stream order; returns a reason when the stream must be cut. */
  check (chunk: Buffer): string | undefined {
    let i = 0
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i)
        this.#skip -= n
        i += n
        continue
      }
      const byte = chunk[i++] as number
      if (this.#headerLen++ === 0) continue // the packet type byte
      this.#len += (byte & 0x7f) * this.#mul
      this.#mul *= 128
      if (byte & 0x80) {
        // [MQTT-2.2.3] the remaining length has at most four bytes
        if (this.#headerLen > 4) return 'malformed remaining length'
        continue
      }
      const len = this.#len
      this.#headerLen = 0
      this.#len = 0
      this.#mul = 1
      if (len > this.#max) return `a packet of ${len} bytes is over the ${this.#max}-byte limit`
      this.#skip = len
    }
    return undefined
  }
}
