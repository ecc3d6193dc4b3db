import type { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'

/**
 * Holds an MQTT QoS 1 PUBACK until the message is durable.
 *
 * Stock Aedes 1.2 writes the PUBACK first and publishes afterwards
 * (lib/handlers/publish.js), so a broker killed between the two has acknowledged a
 * message it never stored for offline persistent sessions: the publisher will not
 * resend it [MQTT-4.3.2-2 puts the message in the receiver's hands on PUBACK].
 * Aedes writes every packet through mqtt-packet's writeToStream(packet, client.conn);
 * for the connections of our own doors, a PUBACK whose message is still being stored
 * is parked here and written once Aedes's `published` hook (which runs after the
 * retained store and the offline enqueue) and the history log say it is stored.
 * Other streams and packet types pass untouched.
 */
interface Pending { held?: { packet: unknown, opts: unknown } | undefined, released: boolean, failed: boolean }

type WriteToStream = (packet: unknown, stream: Duplex, opts?: unknown) => boolean

const gated = new WeakMap<object, Map<number, Pending>>()
let installed = false
let original: WriteToStream | undefined

function install (): void {
  if (installed) return
  installed = true
  const lib = mqttPacket as unknown as { writeToStream: WriteToStream }
  original = lib.writeToStream
  const write = original
  lib.writeToStream = function gatedWriteToStream (packet: unknown, stream: Duplex, opts?: unknown): boolean {
    const p = packet as { cmd?: string, messageId?: number }
    if (p.cmd === 'puback' && typeof p.messageId === 'number') {
      const entry = gated.get(stream)?.get(p.messageId)
      if (entry && !entry.released) {
        entry.held = { packet, opts }
        return true
      }
      if (entry) gated.get(stream)?.delete(p.messageId)
    }
    return write.call(this, packet, stream, opts)
  }
}

export class PubackGate {
  constructor () { install() }

  /** A QoS 1 PUBLISH with `messageId` arrived on `conn`: its PUBACK waits for release(). */
  expect (conn: object, messageId: number): void {
    let map = gated.get(conn)
    if (!map) { map = new Map(); gated.set(conn, map) }
    map.set(messageId, { released: false, failed: false })
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
      if (!conn.destroyed) (original as WriteToStream)(entry.held.packet, conn, entry.held.opts)
    }
  }
}
