import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { FusionError, type ErrorCode } from '../errors.js'
import type { Door } from '../types.js'
import type { Auth } from './auth.js'
import type { ConnectionGuard } from './connection-guard.js'
import { clientAddressOf, requestAddress, type TrustedProxies } from './trust-proxy.js'

/** A door of the topic space, or the echo door (counted nowhere: it carries no messages). */
export type UpgradeDoor = Door | 'echo'

/** How an upgrade is refused: an HTTP status with one of our codes. */
export interface Refusal {
  readonly status: number
  readonly code: ErrorCode
  readonly reason: string
}

/** HTTP status for a refused connection: 503 when the gateway is full, else the code's own. */
export function refusalOf (err: FusionError): Refusal {
  const status = err.code === 'LIMIT_EXCEEDED' ? 503 : err.status
  return { status, code: err.code, reason: err.message }
}

/**
 * Counts a raw connection (MQTT/TCP, MQTT/TLS) against the connection limits; a refused
 * socket is destroyed before Aedes sees a byte of it. Returns true when admitted.
 */
export function admitSocket (guard: ConnectionGuard, socket: Socket, onRefused: (err: FusionError) => void): boolean {
  // The PROXY header's address when a trusted proxy sent one (mqtt-tcp.ts), else the peer.
  const opened = guard.open(clientAddressOf(socket))
  if (opened instanceof FusionError) {
    onRefused(opened)
    socket.destroy()
    return false
  }
  opened.releaseOnClose(socket)
  return true
}

/**
 * The upgrade router's `admit` hook: connection limits for both WebSocket doors, and
 * for /mqtt a token passed as `?token=` or a Bearer header (a bad one is refused with
 * 401; a bad cookie is ignored there, since the client may still log in in CONNECT).
 * /echo needs a valid token when auth is on (401 otherwise): a gateway that admits only
 * its users offers nothing, not even an echo, to anyone else.
 * /ws checks its token itself, so a browser sees NOT_AUTHORIZED and 1008 rather
 * than an anonymous failed upgrade.
 */
export function createUpgradeAdmission (guard: ConnectionGuard, auth: Auth | undefined, onRefused: (err: FusionError) => void = () => {}, trusted?: TrustedProxies): (req: IncomingMessage, door: UpgradeDoor) => Refusal | undefined {
  return (req, door) => {
    // Behind a trusted proxy, each client counts under its own address (X-Forwarded-For).
    const opened = guard.open(requestAddress(req, trusted))
    if (opened instanceof FusionError) {
      onRefused(opened)
      return refusalOf(opened)
    }
    if (auth && door === 'echo') {
      try {
        auth.userOfRequest(req)
      } catch (err) {
        opened.release()
        onRefused(err as FusionError)
        return refusalOf(err as FusionError)
      }
    }
    if (auth && door === 'mqtt-ws') {
      const explicit = auth.tokenOf({ url: req.url, headers: { ...req.headers, cookie: undefined } })
      const token = explicit ?? auth.tokenOf(req)
      if (token !== undefined) {
        try {
          auth.bind(req, auth.userOfToken(token))
        } catch (err) {
          if (explicit !== undefined) {
            opened.release()
            onRefused(err as FusionError)
            return refusalOf(err as FusionError)
          }
        }
      }
    }
    opened.releaseOnClose(req.socket)
    return undefined
  }
}
