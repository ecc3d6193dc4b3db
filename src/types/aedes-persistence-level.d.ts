// aedes-persistence-level ships no types; we only construct it and hand it to Aedes.
declare module 'aedes-persistence-level/asyncPersistence.js' {
  export default class AsyncLevelPersistence {
    constructor (db: unknown)
    setup (broker: unknown): Promise<void>
    destroy (): Promise<void>
  }
}
