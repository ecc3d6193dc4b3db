import type { Server as HttpServer } from 'node:http'
import type { Lifecycle } from '../core/lifecycle.js'
import type { GatewayOptions } from '../core/options.js'
import type { GatewayPolicy } from '../core/policy/policy.js'
import type { Stats } from '../core/stats.js'
import type { LogFn } from '../core/types.js'
import type { Engine } from '../engine/create-engine.js'
import { ByteMeter } from './byte-meter.js'
import { LoopLagMonitor } from '../core/loop-lag.js'
import type { Door } from './door.js'
import { startHeartbeat } from './heartbeat.js'
import { buildApp } from './http/app.js'
import { createHttpDoor } from './http/door.js'
import { HttpPolicy } from './http/http-policy.js'
import { createMqttTcpDoor } from './mqtt-tcp/door.js'
import { createMqttWsServer } from './mqtt-ws/mqtt-ws.js'
import { attachUpgradeRouter } from './upgrade-router.js'
import { closeEchoServer, createEchoServer } from './echo-door.js'
import { Hub } from './ws-hub/hub.js'

/**
 * Builds every door on the engine, registering each in `life` in the order that makes the
 * reverse order right: the /ws hub stops first (1001 and presence while the broker can
 * still publish it), then the MQTT doors drop their clients, then the HTTP listener (its
 * close waits for upgraded sockets), all before the engine stops.
 */
export async function createDoors (options: Readonly<GatewayOptions>, policy: GatewayPolicy, engine: Engine, stats: Stats, log: LogFn, life: Lifecycle): Promise<Door[]> {
  const { broker, bridge, history, presence, cluster, store, upstream } = engine
  const meter = new ByteMeter(stats)
  const hub = new Hub({ options, bridge, history, reads: engine.reads, presence, acl: policy.acl, admit: policy.admit, stats, log, identify: policy.identifyHub, rateGate: policy.rateGate })
  const mqttDeps = { broker, maxPacket: options.maxPacket, stats, meter, log, admit: policy.admitSocket, sendHighWaterMark: options.sendHighWaterMark, trustProxy: policy.trustProxy }
  const mqttWs = createMqttWsServer(mqttDeps)
  // Event-loop lag for /metrics and /api/stats: how long one input or task holds every connection.
  const loopLag = new LoopLagMonitor()
  life.add('event-loop lag', () => loopLag.close())
  const app = await buildApp({
    options,
    bridge,
    history,
    reads: engine.reads,
    acl: policy.acl,
    admit: policy.admit,
    stats,
    statsExtra: () => ({ eventLoop: loopLag.figures(), bytes: meter.totals(), broker: { clients: broker.connectedClients, id: broker.id }, hub: { sessions: hub.size, filters: bridge.filterCount }, limits: { msgRate: options.msgRate, msgBurst: options.msgRate * 2 }, ...(cluster ? { cluster: cluster.health() } : {}), upstream: upstream.stats() }),
    health: () => {
      const c = cluster?.health()
      // A down upstream link shows here but never makes the gateway unready: local traffic still flows.
      const links = upstream.health()
      const detail = { store: c ? 'redis' : store.onDisk ? 'disk' : 'memory', uptime: Math.round((Date.now() - stats.startedAt) / 1000), ...(links ? { upstream: links } : {}) }
      return { ready: !life.closing && (cluster?.ready ?? true), detail: c ? { ...detail, redis: c.redis, node: c.node, nodes: c.nodes } : detail }
    },
    policy: new HttpPolicy({ auth: policy.auth, msgRate: options.msgRate, allowedOrigins: policy.allowedOrigins, secure: policy.tls !== undefined, originCheck: policy.originCheck, metricsToken: options.metricsToken }),
    presence,
    trustProxy: policy.trustProxy,
    https: policy.tls
  })
  // Same limits as the other doors; it reaches no topic (docs/PROTOCOL.md, the echo door).
  const echo = createEchoServer({ maxPayload: options.maxPayload, sendHighWaterMark: options.sendHighWaterMark, rateGate: policy.rateGate, stats })
  attachUpgradeRouter(app.server as HttpServer, {
    '/ws': { door: 'ws', wss: hub.wss },
    '/mqtt': { door: 'mqtt-ws', wss: mqttWs },
    '/echo': { door: 'echo', wss: echo }
  }, { allowedOrigins: policy.allowedOrigins, originCheck: policy.originCheck, meter, admit: policy.admitUpgrade })

  const http = createHttpDoor(app, { port: options.httpPort, host: options.host, tls: policy.tls !== undefined })
  const stopBeat = startHeartbeat(mqttWs, options.heartbeatMs)
  const mqttWsDoor: Door = {
    name: 'mqtt-ws',
    async start () { return {} },
    async stop () {
      stopBeat()
      for (const ws of mqttWs.clients) ws.terminate()
      await new Promise<void>((resolve) => mqttWs.close(() => resolve()))
    }
  }
  const stopEchoBeat = startHeartbeat(echo, options.heartbeatMs)
  const echoDoor: Door = {
    name: 'echo',
    async start () { return {} },
    async stop () {
      stopEchoBeat()
      await closeEchoServer(echo)
    }
  }
  const tcp = createMqttTcpDoor(mqttDeps, { port: options.mqttPort, host: options.host, closeTimeoutMs: options.closeTimeoutMs })
  const tls = policy.tls ? createMqttTcpDoor(mqttDeps, { port: options.mqttsPort, host: options.host, tls: policy.tls, closeTimeoutMs: options.closeTimeoutMs }) : undefined
  const hubDoor: Door = {
    name: 'ws-hub',
    async start () { return {} },
    stop: () => hub.close(),
    reconcile: (gone) => hub.reconcile(gone)
  }
  const doors = [http, mqttWsDoor, echoDoor, tcp, ...(tls ? [tls] : []), hubDoor]
  for (const door of doors) life.add(door.name, () => door.stop())
  return doors
}
