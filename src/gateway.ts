import type { Aedes } from 'aedes'
import { Lifecycle } from './core/lifecycle.js'
import { resolveOptions, type GatewayOptions } from './core/options.js'
import type { Acl } from './core/policy/acl.js'
import { createPolicy } from './core/policy/policy.js'
import { Stats } from './core/stats.js'
import type { LogFn } from './core/types.js'
import type { GatewayUrls } from './doors/door.js'
import { createDoors } from './doors/create-doors.js'
import { createEngine } from './engine/create-engine.js'
import { reconcileMqttClients } from './engine/reconcile.js'
import { checkLibraryVersions } from './engine/internals/index.js'

export type { LogFn } from './core/types.js'
export type { GatewayUrls } from './doors/door.js'

export interface Gateway {
  readonly options: Readonly<GatewayOptions>
  readonly broker: Aedes
  readonly stats: Stats
  /** Binds every door; resolves with their real addresses (port 0 works). */
  listen (): Promise<GatewayUrls>
  /** Closes everything, last built first; idempotent, the same promise each time. */
  close (): Promise<void>
  /**
   * Rereads the users and ACL files (the CLI does it on SIGHUP); throws BAD_OPTION
   * naming a bad file, and then nothing changed. Says what it reloaded.
   */
  reload (): string[]
}

export interface CreateGatewayExtras {
  readonly log?: LogFn
  readonly acl?: Acl
}

// The order of the ready line's keys.
const URL_KEYS: ReadonlyArray<keyof GatewayUrls> = ['http', 'ws', 'mqtt-ws', 'mqtt', 'https', 'wss', 'mqtt-wss', 'mqtts']

/** The composition root: builds core, engine and doors into one lifecycle; binds nothing. */
export async function createGateway (input: Partial<Record<keyof GatewayOptions, unknown>> = {}, extras: CreateGatewayExtras = {}): Promise<Gateway> {
  const options = resolveOptions(input)
  const log = extras.log ?? (() => {})
  checkLibraryVersions({ allowUntested: options.allowUntestedLibs, log })
  const stats = new Stats()
  const policy = createPolicy(options, stats, log, extras.acl)
  const life = new Lifecycle(log)
  try {
    const engine = await createEngine(options, policy, stats, log, life)
    const doors = await createDoors(options, policy, engine, stats, log, life)
    return {
      options,
      broker: engine.broker,
      stats,
      async listen () {
        const urls: Record<string, string> = {}
        for (const door of doors) Object.assign(urls, await door.start())
        return Object.fromEntries(URL_KEYS.filter((k) => urls[k] !== undefined).map((k) => [k, urls[k]])) as unknown as GatewayUrls
      },
      close: () => life.close(),
      reload () {
        const done = policy.reload()
        // A removed user loses the connections they have, not only the next login, and
        // subscriptions granted under the old rules are checked against the new ones.
        const auth = policy.auth
        const gone = auth ? (user: string): boolean => !auth.hasUser(user) : undefined
        const counts = [...doors.map((d) => d.reconcile?.(gone)), reconcileMqttClients(engine.broker, policy.acl, gone)]
        const closed = counts.reduce((n, c) => n + (c?.closed ?? 0), 0)
        const revoked = counts.reduce((n, c) => n + (c?.revoked ?? 0), 0)
        if (closed) done.push(`closed ${closed} connection(s) of removed users`)
        if (revoked) done.push(`revoked ${revoked} subscription(s) the rules no longer allow`)
        return done
      }
    }
  } catch (err) {
    await life.close()
    throw err
  }
}
