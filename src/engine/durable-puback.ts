import type { Duplex } from 'node:stream'
import { gatePacketWrites, type PacketWrite } from './internals/index.js'

/**
 * Holds an MQTT QoS 1 PUBACK until the message is durable.
 *
 * Stock Aedes 1.2 writes the PUBACK first and publishes afterwards
 * (lib/handlers/publish.js), so a broker killed between the two has acknowledged a
 * message it never stored for offline persistent sessions: the publisher will not
 * resend it [MQTT-4.3.2-2 puts the message in the receiver's hands on PUBACK].
 * Every packet Aedes writes passes the gate below (internals: held-puback); for the
 * connections of our own doors, a PUBACK whose message is still being stored is parked
 * here and written once Aedes's `published` hook (which runs after the retained store
 * and the offline enqueue) and the history log say it is stored.
 * Other streams and packet types pass untouched.
 */
interface Pending { held?: PacketWrite | undefined, released: boolean }

const gated = new WeakMap<object, Map<number, Pending>>()

/** Keeps a PUBACK whose message is not stored yet; lets everything else through. */
function holdUnstoredPuback (write: PacketWrite): boolean {
  const { packet, stream } = write
  if (packet.cmd !== 'puback' || typeof packet.messageId !== 'number') return false
  const map = gated.get(stream)
  const entry = map?.get(packet.messageId)
  if (!map || !entry) return false
  if (!entry.released) {
    entry.held = write
    return true
  }
  map.delete(packet.messageId)
  return false
}

export class PubackGate {
  constructor () { gatePacketWrites(holdUnstoredPuback) }

  /** A QoS 1 PUBLISH with `messageId` arrived on `conn`: its PUBACK waits for release(). */
  expect (conn: object, messageId: number): void {
    let map = gated.get(conn)
    if (!map) { map = new Map(); gated.set(conn, map) }
    map.set(messageId, { released: false })
  }

  /**
   * The message is stored (or failed): write the parked PUBACK, or on failure drop it
   * and end the connection so the client resends on its next session.
   */
  release (conn: Duplex, messageId: number, ok: boolean): void {
    const map = gated.get(conn)
    const entry = map?.get(messageId)
    if (!map || !entry) return
    if (!ok) {
      map.delete(messageId)
      conn.destroy()
      return
    }
    entry.released = true
    if (entry.held) {
      map.delete(messageId)
      if (!conn.destroyed) entry.held.send()
    }
  }
}
