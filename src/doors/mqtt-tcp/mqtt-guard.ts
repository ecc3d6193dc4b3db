import type { Duplex } from 'node:stream'
import type { Client } from 'aedes'
import { connackWritten, gateReads, readWholeBuffer } from '../../engine/internals/index.js'
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
 * Puts the guards in front of Aedes on `stream`: the packet-size limit (Aedes has
 * none) and the pre-CONNACK allowance. Aedes pulls with `read()` only (internals:
 * stream-io): no extra stream, no copy. Call the returned function with the Client
 * `broker.handle()` made.
 */
export function guardMqttStream (stream: Duplex, maxPacket: number, onViolation: (reason: string) => void): (client: Client) => void {
  readWholeBuffer(stream)
  const guard = new MqttLengthGuard(maxPacket)
  let client: Client | undefined
  let connected = false
  const isConnected = (): boolean => connected || (connected = client !== undefined && connackWritten(client))
  gateReads(stream, {
    open: () => isConnected() || guard.started < PACKETS_BEFORE_CONNACK,
    take: (chunk) => {
      const n = isConnected() ? chunk.length : guard.bytesForPackets(chunk, PACKETS_BEFORE_CONNACK - guard.started)
      const reason = guard.check(n === chunk.length ? chunk : chunk.subarray(0, n))
      if (!reason) return n
      onViolation(reason)
      return -1
    }
  })
  return (c) => { client = c }
}
