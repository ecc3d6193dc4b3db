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

/**
 * Turns off mqtt-packet's number cache for the whole process, through its documented
 * switch (`writeToStream.cacheNumbers = false`, README: "Should be set before any
 * `writeToStream` calls"). The cache is 65,536 two-byte Buffers, one per possible packet
 * id or length, made at the first packet the process writes: 6-7 MB of heap (a third of
 * an idle gateway's live heap) that every full collection marks again, so its pauses
 * were longer (issue 15) and 10,000 idle clients cost 700 B more each than they hold
 * (issue 14). Without it a packet id or a topic length is a 2-byte slice of Node's
 * buffer pool, taken when it is written. Set on the library's own function: the gate
 * above replaces the module's `writeToStream`, not the switch's owner.
 */
export function writeNumbersUncached (): void {
  (original as WriteToStream & { cacheNumbers: boolean }).cacheNumbers = false
}

/** True when mqtt-packet builds no number cache (for tests). */
export function numbersUncached (): boolean {
  return !(original as WriteToStream & { cacheNumbers: boolean }).cacheNumbers
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
