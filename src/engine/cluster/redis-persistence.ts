import { Readable } from 'node:stream'
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js'

/**
 * aedes-persistence-redis 12 with the streams Aedes 1.2 expects. Its stream methods
 * return async generators, but Aedes pipes the retained messages of a SUBSCRIBE
 * (`stream.pipe(...)` in lib/handlers/subscribe.js): an MQTT client subscribing on a
 * cluster node would crash the process. The embedded persistences return
 * `Readable.from(...)`; so does this one.
 */
export class RedisPersistence extends AsyncRedisPersistence {
  override createRetainedStreamCombi (patterns: string[]): Readable { return Readable.from(super.createRetainedStreamCombi(patterns)) }
  override createRetainedStream (pattern: string): Readable { return Readable.from(super.createRetainedStream(pattern)) }
  override outgoingStream (client: unknown): Readable { return Readable.from(super.outgoingStream(client)) }
  override streamWill (brokers: unknown): Readable { return Readable.from(super.streamWill(brokers)) }
  override getClientList (topic: string): Readable { return Readable.from(super.getClientList(topic)) }
}
