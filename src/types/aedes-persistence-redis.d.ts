// aedes-persistence-redis ships no types; we only extend it a little and hand it to Aedes.
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  export default class AsyncRedisPersistence {
    constructor (opts: { conn?: unknown, maxSessionDelivery?: number, packetTTL?: (packet: unknown) => number })
    setup (broker: unknown): Promise<void>
    destroy (): Promise<void>
    createRetainedStreamCombi (patterns: string[]): AsyncIterable<unknown>
    createRetainedStream (pattern: string): AsyncIterable<unknown>
    outgoingStream (client: unknown): AsyncIterable<unknown>
    streamWill (brokers: unknown): AsyncIterable<unknown>
    getClientList (topic: string): Iterable<string> | AsyncIterable<unknown>
  }
}
