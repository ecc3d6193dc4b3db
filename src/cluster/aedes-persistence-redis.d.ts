// aedes-persistence-redis ships no types; we only construct it and hand it to Aedes.
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  export default class AsyncRedisPersistence {
    constructor (opts: { conn?: unknown, maxSessionDelivery?: number, packetTTL?: (packet: unknown) => number })
    setup (broker: unknown): Promise<void>
    destroy (): Promise<void>
  }
}
