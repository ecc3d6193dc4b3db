import type { Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { displayHost, LISTEN_BACKLOG, listenError, type Door } from '../door.js'

/**
 * The HTTP port as a Door: pages, REST and the upgrades to /ws and /mqtt, which share its
 * address (so it names their URLs too). Its stop closes the listener; the WebSocket doors
 * on it stop before it (Fastify's close waits for every upgraded socket).
 */
export function createHttpDoor (app: FastifyInstance, init: { port: number, host: string, tls: boolean }): Door {
  return {
    name: 'http',
    async start () {
      try {
        await app.listen({ port: init.port, host: init.host, backlog: LISTEN_BACKLOG })
      } catch (cause) {
        throw listenError('http-port', init.port, cause, init.host)
      }
      const port = ((app.server as HttpServer).address() as AddressInfo).port
      const base = `${displayHost(init.host)}:${port}`
      if (!init.tls) return { http: `http://${base}`, ws: `ws://${base}/ws`, 'mqtt-ws': `ws://${base}/mqtt` }
      // The HTTP port speaks only TLS now: http/ws/mqtt-ws name its https/wss URLs.
      const urls = { https: `https://${base}`, wss: `wss://${base}/ws`, 'mqtt-wss': `wss://${base}/mqtt` }
      return { http: urls.https, ws: urls.wss, 'mqtt-ws': urls['mqtt-wss'], ...urls }
    },
    async stop () { await app.close() }
  }
}
