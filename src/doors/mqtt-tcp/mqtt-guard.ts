import type { Duplex } from 'node:stream'
import type { Client } from 'aedes'
import { connackWritten, gateReads, readWholeBuffer, type ReadGate } from '../../engine/internals/index.js'
import { MqttLengthGuard } from '../../core/mqtt-length-guard.js'

export { MqttLengthGuard }

/**
 * Packets Aedes may parse before its CONNACK is written, the CONNECT included. Aedes
 * queues the packets that follow CONNECT until then and drops the connection at its
 * `queueLimit` (42) with no CONNACK. MQTT 3.1.1 section 3.1.4: "Clients are allowed to
 * send further Control Packets immediately after sending a CONNECT Packet; Clients need
 * not wait for a CONNACK Packet to arrive from the Server". MQTT.js flushes its offline
 * queue the moment CONNACK arrives, which on a busy broker is before Aedes's write
 * callback has run. Past this many, the bytes wait in the socket (its own
 * back-pressure stops reading) and are read once the CONNACK is out.
 */
export const PACKETS_BEFORE_CONNACK = 32

/**
 * One connection's read gate: the packet-size limit (Aedes has none) and the pre-CONNACK
 * allowance. One object per connection, its methods on the prototype: an idle client
 * carries no closures for it.
 */
export class MqttStreamGuard extends MqttLengthGuard implements ReadGate {
  /** The Client `broker.handle()` made for the stream; set right after. */
  client: Client | undefined = undefined
  #connected = false
  readonly #onViolation: (reason: string) => void

  constructor (maxPacket: number, onViolation: (reason: string) => void) {
    super(maxPacket)
    this.#onViolation = onViolation
  }

  #isConnected (): boolean {
    return this.#connected || (this.#connected = this.client !== undefined && connackWritten(this.client))
  }

  open (): boolean { return this.#isConnected() || this.started < PACKETS_BEFORE_CONNACK }

  take (chunk: Buffer): number {
    const n = this.#isConnected() ? chunk.length : this.bytesForPackets(chunk, PACKETS_BEFORE_CONNACK - this.started)
    const reason = this.check(n === chunk.length ? chunk : chunk.subarray(0, n))
    if (!reason) return n
    this.#onViolation(reason)
    return -1
  }
}

/**
 * Puts the guards in front of Aedes on `stream`. Aedes pulls with `read()` only
 * (internals: stream-io): no extra stream, no copy. Set the returned guard's `client` to
 * the Client `broker.handle()` made. `onViolation` is shared by every connection of a door.
 */
export function guardMqttStream (stream: Duplex, maxPacket: number, onViolation: (reason: string) => void): MqttStreamGuard {
  readWholeBuffer(stream)
  const guard = new MqttStreamGuard(maxPacket, onViolation)
  gateReads(stream, guard)
  return guard
}
