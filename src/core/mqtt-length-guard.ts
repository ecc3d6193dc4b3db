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

  /** Packets begun so far (their type byte seen). */
  get started (): number { return this.#started }

  #started = 0

  /**
   * How many bytes of `chunk`, read next, hold at most `packets` more packet beginnings:
   * the offset of the first type byte past that count, or the whole chunk. Reads nothing
   * into the guard's state (check() does).
   */
  bytesForPackets (chunk: Buffer, packets: number): number {
    let skip = this.#skip
    let headerLen = this.#headerLen
    let len = this.#len
    let mul = this.#mul
    let begun = 0
    let i = 0
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i)
        skip -= n
        i += n
        continue
      }
      if (headerLen === 0 && begun === packets) return i
      const byte = chunk[i++] as number
      if (headerLen++ === 0) { begun++; continue }
      len += (byte & 0x7f) * mul
      mul *= 128
      if ((byte & 0x80) && headerLen <= 4) continue
      skip = len
      headerLen = 0
      len = 0
      mul = 1
    }
    return chunk.length
  }

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
      if (this.#headerLen++ === 0) { this.#started++; continue } // the packet type byte
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
