import type { AbstractLevel } from 'abstract-level'

/** What is recorded of a persistent session: the user who made it (undefined: auth off). */
export interface SessionOwner { readonly user: string | undefined }

// The sublevel beside Aedes's own keys (`retained:`, `subscriptions:`, ...) and the
// history log's: LevelDB sublevels are prefixed `!name!`, which none of those use.
const SUBLEVEL = 'fusion-session-owner'

/**
 * Who owns each persistent MQTT session (issue 13, item 2). A session made with
 * clean=false by a user belongs to that user: a CONNECT of another user with its client
 * id is refused with CONNACK 5, so nobody drains what was queued for someone else or
 * leaves a subscription of theirs behind. Recorded in the embedded store, so it holds
 * after a restart (with --memory, in memory, as the sessions themselves are); the
 * reload also walks these to revoke the stored subscriptions of offline sessions.
 *
 * Kept whole in memory too (one small entry per persistent session, which Aedes keeps
 * anyway): the CONNECT check is a Map lookup.
 */
export class SessionOwners {
  readonly #owners = new Map<string, SessionOwner>()
  readonly #db: any

  private constructor (db: any) { this.#db = db }

  /** Opens the record on `db` (the embedded store), or in memory only without one. */
  static async open (db?: AbstractLevel<any, any, any>): Promise<SessionOwners> {
    const owners = new SessionOwners(db?.sublevel(SUBLEVEL, { valueEncoding: 'json' }))
    if (owners.#db) {
      for await (const [clientId, value] of owners.#db.iterator()) {
        const user = (value as { user?: unknown }).user
        owners.#owners.set(clientId as string, { user: typeof user === 'string' ? user : undefined })
      }
    }
    return owners
  }

  get size (): number { return this.#owners.size }

  /** The owner of `clientId`'s stored session, or undefined when none is recorded. */
  get (clientId: string): SessionOwner | undefined { return this.#owners.get(clientId) }

  /**
   * True when `user` may take the session of `clientId`: nobody owns it, it was made
   * with auth off (no user: nobody's), or `user` made it.
   */
  mayTake (clientId: string, user: string | undefined): boolean {
    const owner = this.#owners.get(clientId)
    return owner === undefined || owner.user === undefined || owner.user === user
  }

  /** Records that `user` holds the persistent session of `clientId`. */
  async claim (clientId: string, user: string | undefined): Promise<void> {
    const known = this.#owners.get(clientId)
    if (known && known.user === user) return
    this.#owners.set(clientId, { user })
    await this.#db?.put(clientId, user === undefined ? {} : { user })
  }

  /** Forgets `clientId`'s session (its owner connected with clean=true: [MQTT-3.1.2-6] it ends). */
  async release (clientId: string): Promise<void> {
    if (!this.#owners.delete(clientId)) return
    await this.#db?.del(clientId)
  }

  /** Every recorded session and its owner. */
  entries (): IterableIterator<[string, SessionOwner]> { return this.#owners.entries() }
}
