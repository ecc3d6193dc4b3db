import type { Duplex } from 'node:stream'
import { inspectReads, readWholeBuffer } from '../../engine/internals/index.js'
import { MqttLengthGuard } from '../../core/mqtt-length-guard.js'

export { MqttLengthGuard }

/**
 * Puts the guard in front of Aedes on `stream`. Aedes pulls with `read()` only
 * (internals: stream-io): no extra stream, no copy.
 */
export function guardMqttStream (stream: Duplex, maxPacket: number, onViolation: (reason: string) => void): void {
  readWholeBuffer(stream)
  const guard = new MqttLengthGuard(maxPacket)
  inspectReads(stream, (chunk) => {
    const reason = guard.check(chunk)
    if (!reason) return true
    onViolation(reason)
    return false
  })
}
