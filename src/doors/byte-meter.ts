import type { Socket } from 'node:net'
import type { Door } from '../core/policy/acl.js'
import type { Stats } from '../core/stats.js'

/**
 * Bytes on the wire per door, read from the sockets themselves (bytesRead and
 * bytesWritten), so framing and MQTT headers count too: what the comparison page
 * shows is what travelled.
 */
export class ByteMeter {
  readonly #live = new Map<Socket, Door>()
  readonly #stats: Stats

  constructor (stats: Stats) { this.#stats = stats }

  track (socket: Socket, door: Door): void {
    this.#live.set(socket, door)
    socket.once('close', () => {
      this.#live.delete(socket)
      const d = this.#stats.doors[door]
      d.bytesIn += socket.bytesRead
      d.bytesOut += socket.bytesWritten
    })
  }

  /** Bytes per door including the sockets still open. */
  totals (): Record<Door, { bytesIn: number, bytesOut: number }> {
    const out = {} as Record<Door, { bytesIn: number, bytesOut: number }>
    for (const [door, d] of Object.entries(this.#stats.doors) as Array<[Door, { bytesIn: number, bytesOut: number }]>) {
      out[door] = { bytesIn: d.bytesIn, bytesOut: d.bytesOut }
    }
    for (const [socket, door] of this.#live) {
      out[door].bytesIn += socket.bytesRead
      out[door].bytesOut += socket.bytesWritten
    }
    return out
  }
}
