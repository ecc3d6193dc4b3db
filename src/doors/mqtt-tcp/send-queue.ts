import type { Duplex } from 'node:stream'
import { afterEachWrite, type AfterWrite } from '../../engine/internals/index.js'

/**
 * The slow-consumer rule for the MQTT doors, the same as the hub's: a client may have at
 * most `highWaterMark` bytes queued unsent; past that it is cut at once.
 *
 * Without it, a subscriber that stops reading holds its publishers: Aedes waits for
 * 'drain' whenever a write returns false (on a socket, past 16 KiB queued), and every
 * client publishing to that subscriber's topics waits with it, for up to drainTimeout
 * (measured: 40 MB to a frozen reader took 10 s instead of under one). Here a write
 * reports "full" only once the queue passes the mark, and then the stream is destroyed,
 * so nobody waits and memory per slow reader stays bounded. Aedes writes through
 * `write()` only (internals: stream-io): no extra stream, no copy.
 *
 * One rule serves every connection of a door (it is handed the stream on each write).
 */
export class SendQueueLimit implements AfterWrite {
  readonly #highWaterMark: number
  readonly #onSlow: () => void

  constructor (highWaterMark: number, onSlow: () => void) {
    this.#highWaterMark = highWaterMark
    this.#onSlow = onSlow
  }

  afterWrite (stream: Duplex): boolean {
    if (stream.writableLength <= this.#highWaterMark) return true
    if (!stream.destroyed) {
      this.#onSlow()
      stream.destroy()
    }
    return false
  }

  /** Puts the rule on `stream`. */
  apply (stream: Duplex): void { afterEachWrite(stream, this) }
}

/** Puts a slow-consumer limit of `highWaterMark` bytes on one stream. */
export function boundSendQueue (stream: Duplex, highWaterMark: number, onSlow: () => void): void {
  new SendQueueLimit(highWaterMark, onSlow).apply(stream)
}
