import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { WebSocketServer } from 'ws'
import type { ByteMeter } from './byte-meter.js'
import type { Socket } from 'node:net'
import { OriginCheck } from '../core/policy/origin-check.js'

import type { UpgradeDoor } from '../core/policy/connection-admission.js'
export type { UpgradeDoor }

export interface UpgradeRoute {
  readonly door: UpgradeDoor
  readonly wss: WebSocketServer
}

export interface UpgradeRouterOptions {
  /** Origins allowed besides the page's own (exact `scheme://host[:port]`). */
  readonly allowedOrigins: readonly string[]
  /** The Origin and Host checks; built from allowedOrigins (plain http, any Host) when left out. */
  readonly originCheck?: OriginCheck | undefined
  readonly meter: ByteMeter
  /** Answers undefined to accept, or an HTTP status, reason and error code to refuse (auth, limits). */
  readonly admit?: (req: IncomingMessage, door: UpgradeDoor) => { status: number, reason: string, code?: string } | undefined
}

function refuse (socket: Duplex, status: number, reason: string, code?: string): void {
  const body = JSON.stringify({ statusCode: status, code: code ?? (status === 403 ? 'ACL_DENIED' : status === 401 ? 'NOT_AUTHORIZED' : 'NOT_FOUND'), message: reason })
  socket.end(`HTTP/1.1 ${status} ${reason.replace(/[\r\n]/g, ' ')}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  setTimeout(() => socket.destroy(), 1000).unref()
}

/**
 * A browser page from another origin must not be able to open our sockets with the
 * user's cookies (cross-site WebSocket hijacking), nor a page whose name was rebound to
 * our address (DNS rebinding): see OriginCheck. Clients that send no Origin (command
 * line, devices) are not browsers and pass the Origin check.
 */
export function originAllowed (req: IncomingMessage, allowed: readonly string[]): boolean {
  return new OriginCheck({ allowed, secure: false, loopbackOnly: false }).originAllowed(req)
}

function destroyOnError (this: Duplex): void { this.destroy() }

/** The one `upgrade` listener: routes /ws, /mqtt and /echo by path, refuses anything else with an HTTP error. */
export function attachUpgradeRouter (server: Server, routes: Record<string, UpgradeRoute>, opts: UpgradeRouterOptions): void {
  const check = opts.originCheck ?? new OriginCheck({ allowed: opts.allowedOrigins, secure: false, loopbackOnly: false })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A shared listener, not a closure: one made here would share this call's context
    // with the handleUpgrade callback below and keep `req` (its headers, some 1.5 KB)
    // alive for as long as the socket is open.
    socket.on('error', destroyOnError)
    const path = (req.url ?? '/').split('?')[0] as string
    const route = routes[path]
    if (!route) return refuse(socket, 404, `no WebSocket endpoint at ${path.slice(0, 100)}; use /ws, /mqtt or /echo`)
    const why = check.refusal(req)
    if (why) return refuse(socket, 403, why)
    const denied = opts.admit?.(req, route.door)
    if (denied) return refuse(socket, denied.status, denied.reason, denied.code)
    if (route.door !== 'echo') opts.meter.track(socket as Socket, route.door)
    route.wss.handleUpgrade(req, socket, head, (ws) => route.wss.emit('connection', ws, req))
  })
}
