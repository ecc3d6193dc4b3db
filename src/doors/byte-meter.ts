import type { Socket } from 'node:net'
import type { Door } from '../core/policy/acl.js'
import type { Stats } from '../core/stats.js'

/**
 * Bytes on the wire per door, read from the sockets themselves (bytesRead and
 * bytesWritten), so framing and MQTT headers count too: what the comparison page
 * shows is what travelled.
 */
const METER = Symbol('fusion.meter')
type Metered = Socket & { [METER]?: ByteMeter }

export class ByteMeter {
  readonly #live = new Map<Socket, Door>()
  readonly #stats: Stats

  constructor (stats: Stats) { this.#stats = stats }

  track (socket: Socket, door: Door): void {
    this.#live.set(socket, door)
    ;(socket as Metered)[METER] = this
    socket.on('close', ByteMeter.#closed)
  }

  // One listener for every socket (no closure per connection): `this` is the socket.
  static readonly #closed = function (this: Metered): void {
    const meter = this[METER]
    if (meter === undefined) return
    const door = meter.#live.get(this)
    if (door === undefined) return
    meter.#live.delete(this)
    const d = meter.#stats.doors[door]
    d.bytesIn += this.bytesRead
    d.bytesOut += this.bytesWritten
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
