import { once } from 'node:events'
import type { AddressInfo, Server } from 'node:net'
import { FusionError } from '../core/errors.js'

/** The addresses every door listens on, as the ready line names them. */
export interface GatewayUrls {
  readonly http: string
  readonly ws: string
  readonly 'mqtt-ws': string
  readonly mqtt: string
  /** With TLS on: the same doors over TLS (http/ws/mqtt-ws then name these too). */
  readonly https?: string
  readonly wss?: string
  readonly 'mqtt-wss'?: string
  readonly mqtts?: string
}

/**
 * One shape for every door: `start` binds (if it has a listener of its own) and says the
 * addresses it serves; `stop` stops accepting and closes its clients; `reconcile` applies
 * a reload of the users and rules to the clients it holds.
 */
export interface Door {
  readonly name: string
  start (): Promise<Partial<Record<keyof GatewayUrls, string>>>
  stop (): Promise<void>
  reconcile? (userGone?: (user: string) => boolean): { closed: number, revoked: number }
}

/**
 * Connections the kernel holds for us before we accept them (Linux caps it at
 * net.core.somaxconn, 4,096 on current kernels). Node's default is 511: when 10,000
 * devices reconnect after an outage, the SYNs past it are dropped and retried by the
 * devices 1, 3, 7, 15 and 31 s later, so the last device was back after 29 s
 * (bench/storm.mjs) although the gateway was idle half of that time.
 */
export const LISTEN_BACKLOG = 4096

/** Listens on `port`/`host`, naming the option to fix when it cannot. Resolves with the bound port. */
export async function listenOn (server: Server, port: number, host: string, flag: string): Promise<number> {
  try {
    server.listen({ port, host, backlog: LISTEN_BACKLOG })
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err })])
  } catch (cause) {
    throw listenError(flag, port, cause, host)
  }
  return (server.address() as AddressInfo).port
}

export function listenError (flag: string, port: number, cause: unknown, host: string): FusionError {
  const code = (cause as NodeJS.ErrnoException).code
  // The address, not the port, is what cannot be used: name the option to fix.
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new FusionError('BAD_OPTION', `--host ${host} is not an address of this machine (${code})`, { cause })
  }
  const why = code === 'EADDRINUSE' ? 'is in use' : code === 'EACCES' ? 'needs more privileges' : `cannot be used (${code ?? String(cause)})`
  return new FusionError('PORT_IN_USE', `--${flag} ${port} ${why}`, { cause })
}

/** A wildcard bind is reachable on loopback: name that, so the URL works as printed. */
export function displayHost (host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}
