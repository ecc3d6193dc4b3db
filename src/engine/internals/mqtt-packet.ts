import type { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'

// Aedes 1.2 writes every packet through mqtt-packet's writeToStream(packet, client.conn)
// (lib/write.js). Replacing that function on the module object is the only point where
// a packet to one client can be held back: the replacement is process-wide, and reaches
// Aedes only while Aedes resolves the same copy of mqtt-packet (versions.ts checks it).

type WriteToStream = (packet: unknown, stream: Duplex, opts?: unknown) => boolean

/** A packet on its way to a stream, as Aedes wrote it. */
export interface PacketWrite {
  readonly packet: { readonly cmd?: string, readonly messageId?: number }
  readonly stream: Duplex
  /** Writes it now, past the gate. */
  send (): boolean
}

/** Says whether it keeps the write (true: it calls `send()` later, or never). */
export type PacketGate = (write: PacketWrite) => boolean

const lib = mqttPacket as unknown as { writeToStream: WriteToStream }
const original: WriteToStream = lib.writeToStream
let installed: PacketGate | undefined

/**
 * Installs `gate` in front of every packet Aedes writes, once per process. Installing the
 * same gate again does nothing; a different one is a programming error.
 */
export function gatePacketWrites (gate: PacketGate): void {
  if (installed === gate) return
  if (installed) throw new Error('mqtt-packet writeToStream is already gated')
  installed = gate
  lib.writeToStream = function gatedWriteToStream (packet: unknown, stream: Duplex, opts?: unknown): boolean {
    const send = (): boolean => original.call(this, packet, stream, opts)
    if (gate({ packet: packet as PacketWrite['packet'], stream, send })) return true
    return send()
  }
}

/** True while a gate is installed (for tests). */
export function packetWritesGated (): boolean { return installed !== undefined }

/**
 * Takes the gate out again (tests only: one test file may compare the stock behaviour
 * with the gated one in the same process).
 */
export function ungatePacketWrites (): void {
  installed = undefined
  lib.writeToStream = original
}
