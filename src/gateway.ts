import type { LogFn } from './core/types.js'
export type { LogFn } from './core/types.js'
import { once } from 'node:events'
import type { Server as HttpServer } from 'node:http'
import type { AddressInfo, Server as NetServer } from 'node:net'
import type { Aedes } from 'aedes'
import { FusionError } from './core/errors.js'
import { checkTopicFilter } from './core/topics/topic-rules.js'
import { resolveOptions, type GatewayOptions } from './core/options.js'
import { openStore, type Store } from './core/store/open-store.js'
import { createBroker } from './engine/create-broker.js'
import { reconcileMqttClients } from './engine/reconcile.js'
import { HistoryLog } from './core/history/history-log.js'
import type { HistoryStore } from './core/history/history-store.js'
import { createCluster } from './engine/cluster/cluster.js'
import { Bridge } from './engine/bridge.js'
import { PresenceTracker } from './engine/presence.js'
import { Hub } from './doors/ws-hub/hub.js'
import type { Acl } from './core/policy/acl.js'
import { createPolicy } from './core/policy/policy.js'
import { startHeartbeat } from './doors/heartbeat.js'
import { Stats } from './core/stats.js'
import { LoopLagMonitor } from './core/loop-lag.js'
import { ByteMeter } from './doors/byte-meter.js'
import { createMqttTcpServer, createMqttTlsServer } from './doors/mqtt-tcp/mqtt-tcp.js'
import { createMqttWsServer } from './doors/mqtt-ws/mqtt-ws.js'
import { attachUpgradeRouter } from './doors/upgrade-router.js'
import { buildApp } from './doors/http/app.js'
import { watchMqttPresence } from './engine/mqtt-presence.js'
import { PubackGate } from './engine/durable-puback.js'
import type { Durability } from './engine/create-broker.js'
import type { FastifyInstance } from 'fastify'
import type { WebSocketServer } from 'ws'


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

export interface Gateway {
  readonly options: Readonly<GatewayOptions>
  readonly broker: Aedes
  readonly stats: Stats
  /** Binds every door; resolves with their real addresses (port 0 works). */
  listen (): Promise<GatewayUrls>
  /** Closes everything under one deadline; idempotent, the same promise each time. */
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

const silent: LogFn = () => {}

/**
 * Builds every part and binds nothing. The composition root: it wires, it holds no
 * protocol logic.
 */
export async function createGateway (input: Partial<Record<keyof GatewayOptions, unknown>> = {}, extras: CreateGatewayExtras = {}): Promise<Gateway> {
  const options = resolveOptions(input)
  const log = extras.log ?? silent
  const stats = new Stats()
  const policy = createPolicy(options, stats, log, extras.acl)
  const acl = policy.acl
  const meter = new ByteMeter(stats)

  // With --redis everything kept lives in Redis; the embedded store stays empty.
  const store: Store = await openStore(options.redis ? { dataDir: options.dataDir, memory: true } : options)
  const steps: Array<() => Promise<unknown> | unknown> = [] // teardown, in reverse order of creation
  steps.push(() => store.close())
  try {
    const logged = options.historyTopics.split(',').map((f) => f.trim()).filter(Boolean)
    for (const f of logged) {
      try { checkTopicFilter(f, options) } catch (err) { throw new FusionError('BAD_OPTION', `--history-topics: ${(err as Error).message}`) }
    }
    const historyOpts = { maxPerTopic: Math.max(options.historyMaxPerTopic, options.historyLimit), maxAgeMs: options.historyMaxAgeMs }
    const cluster = options.redis ? await createCluster({ url: options.redis, logged, history: historyOpts, log }) : undefined
    if (cluster) steps.push(() => cluster.close())
    const history: HistoryStore = cluster ? cluster.history : await HistoryLog.open(store.db, historyOpts)
    steps.push(() => history.close())
    const durability: Durability | undefined = options.holdPuback ? { gate: new PubackGate(), storedFor: () => undefined } : undefined
    const broker = await createBroker({
      store, acl, admit: policy.admit, stats, limits: options, log, durability, auth: policy.auth, rateGate: policy.rateGate,
      ...(cluster ? { id: cluster.nodeId, mq: cluster.mq, persistence: cluster.persistence, admitPublish: (p: { qos: number }) => cluster.admitMqtt(p) } : {})
    })
    steps.push(() => new Promise<void>((resolve) => broker.close(() => resolve())))
    cluster?.attach(broker as unknown as { brokers: Record<string, number> })
    const bridge = new Bridge(broker, history, logged, { admit: cluster ? () => cluster.admitLocal() : undefined })
    if (durability) durability.storedFor = (stamp) => bridge.storedFor(stamp)
    steps.push(() => bridge.close())
    // Logged topics are kept even when no /ws client listens.
    await bridge.startLogging()
    const presence = new PresenceTracker(bridge, { ledger: cluster?.presenceLedger })
    await presence.start()
    if (!options.redis) await presence.clearStale()
    cluster?.onRecovered(() => { void presence.reannounce() })
    cluster?.onNodeGone((clientId, name, via) => presence.announce(clientId, 'offline', name, via))
    const unwatch = watchMqttPresence(broker, presence)
    steps.push(unwatch)
    const hub = new Hub({ options, bridge, history, presence, acl, admit: policy.admit, stats, log, identify: policy.identifyHub, rateGate: policy.rateGate })
    steps.push(() => hub.close())
    const mqttDeps = { broker, maxPacket: options.maxPacket, stats, meter, log, admit: policy.admitSocket, sendHighWaterMark: options.sendHighWaterMark }
    const mqttWs: WebSocketServer = createMqttWsServer(mqttDeps)
    const stopMqttWsBeat = startHeartbeat(mqttWs, options.heartbeatMs)
    const tcp: NetServer = createMqttTcpServer(mqttDeps)
    const mqtts: NetServer | undefined = policy.tls ? createMqttTlsServer(mqttDeps, policy.tls) : undefined
    const loopLag = new LoopLagMonitor()
    steps.push(() => loopLag.close())
    const app: FastifyInstance = await buildApp({
      options,
      bridge,
      history,
      acl,
      admit: policy.admit,
      stats,
      statsExtra: () => ({ eventLoop: loopLag.figures(), bytes: meter.totals(), broker: { clients: broker.connectedClients, id: broker.id }, hub: { sessions: hub.size, filters: bridge.filterCount }, ...(cluster ? { cluster: cluster.health() } : {}) }),
      health: () => {
        const c = cluster?.health()
        const detail = { store: c ? 'redis' : store.onDisk ? 'disk' : 'memory', uptime: Math.round((Date.now() - stats.startedAt) / 1000) }
        return { ready: !closing && (cluster?.ready ?? true), detail: c ? { ...detail, redis: c.redis, node: c.node, nodes: c.nodes } : detail }
      },
      policy: policy.http,
      https: policy.tls
    })
    attachUpgradeRouter(app.server as HttpServer, {
      '/ws': { door: 'ws', wss: hub.wss },
      '/mqtt': { door: 'mqtt-ws', wss: mqttWs }
    }, { allowedOrigins: policy.allowedOrigins, originCheck: policy.originCheck, meter, admit: policy.admitUpgrade })

    let closing: Promise<void> | undefined
    let listening = false

    const close = (): Promise<void> => {
      closing ??= (async () => {
        // Order matters: stop accepting, say goodbye to /ws clients (1001) while the
        // broker can still publish their presence, then the MQTT clients, then HTTP,
        // then flush and close the store. One failing step never skips the rest.
        const run = async (fn: () => unknown, what: string): Promise<void> => {
          const t0 = Date.now()
          try { await fn() } catch (err) { log('warn', `close: ${what} failed`, err) }
          if (process.env.FUSION_DEBUG_CLOSE) log('info', `close: ${what} took ${Date.now() - t0} ms`)
        }
        // net.Server#close waits for open connections, which the broker ends below.
        const tcpClosed = listening ? new Promise<void>((resolve) => tcp.close(() => resolve())) : Promise.resolve()
        const tlsClosed = listening && mqtts ? new Promise<void>((resolve) => mqtts.close(() => resolve())) : Promise.resolve()
        stopMqttWsBeat()
        await run(() => hub.close(), 'hub')
        for (const ws of mqttWs.clients) ws.terminate()
        await run(unwatch, 'presence watch')
        await run(() => new Promise<void>((resolve) => broker.close(() => resolve())), 'broker')
        if (cluster) await run(() => cluster.close(), 'cluster')
        await run(() => withDeadline(tcpClosed, options.closeTimeoutMs), 'mqtt listener')
        await run(() => withDeadline(tlsClosed, options.closeTimeoutMs), 'mqtts listener')
        await run(() => app.close(), 'http')
        await run(() => new Promise<void>((resolve) => mqttWs.close(() => resolve())), 'mqtt-ws')
        bridge.close()
        await run(() => history.close(), 'history')
        await run(() => store.close(), 'store')
        loopLag.close()
      })()
      return closing
    }

    return {
      options,
      broker,
      stats,
      async listen () {
        try {
          await app.listen({ port: options.httpPort, host: options.host })
        } catch (cause) {
          throw listenError('http-port', options.httpPort, cause, options.host)
        }
        try {
          tcp.listen(options.mqttPort, options.host)
          await Promise.race([once(tcp, 'listening'), once(tcp, 'error').then(([err]) => { throw err })])
        } catch (cause) {
          throw listenError('mqtt-port', options.mqttPort, cause, options.host)
        }
        if (mqtts) {
          try {
            mqtts.listen(options.mqttsPort, options.host)
            await Promise.race([once(mqtts, 'listening'), once(mqtts, 'error').then(([err]) => { throw err })])
          } catch (cause) {
            throw listenError('mqtts-port', options.mqttsPort, cause, options.host)
          }
        }
        listening = true
        const host = displayHost(options.host)
        const httpPort = (app.server.address() as AddressInfo).port
        const mqttPort = (tcp.address() as AddressInfo).port
        if (!mqtts) {
          return {
            http: `http://${host}:${httpPort}`,
            ws: `ws://${host}:${httpPort}/ws`,
            'mqtt-ws': `ws://${host}:${httpPort}/mqtt`,
            mqtt: `mqtt://${host}:${mqttPort}`
          }
        }
        // The HTTP port speaks only TLS now: http/ws/mqtt-ws name its https/wss URLs.
        const https = `https://${host}:${httpPort}`
        const wss = `wss://${host}:${httpPort}/ws`
        const mqttWss = `wss://${host}:${httpPort}/mqtt`
        return {
          http: https,
          ws: wss,
          'mqtt-ws': mqttWss,
          mqtt: `mqtt://${host}:${mqttPort}`,
          https,
          wss,
          'mqtt-wss': mqttWss,
          mqtts: `mqtts://${host}:${(mqtts.address() as AddressInfo).port}`
        }
      },
      close,
      reload () {
        const done = policy.reload()
        // A removed user loses the connections they have, not only the next login, and
        // subscriptions granted under the old rules are checked against the new ones.
        const auth = policy.auth
        const gone = auth ? (user: string): boolean => !auth.hasUser(user) : undefined
        const ws = hub.reconcile(gone)
        const mqtt = reconcileMqttClients(broker, policy.acl, gone)
        if (ws.closed + mqtt.closed) done.push(`closed ${ws.closed + mqtt.closed} connection(s) of removed users`)
        if (ws.revoked + mqtt.revoked) done.push(`revoked ${ws.revoked + mqtt.revoked} subscription(s) the rules no longer allow`)
        return done
      }
    }
  } catch (err) {
    for (const step of steps.reverse()) { try { await step() } catch {} }
    throw err
  }
}

function withDeadline (p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })]).finally(() => clearTimeout(timer))
}

function listenError (flag: string, port: number, cause: unknown, host: string): FusionError {
  const code = (cause as NodeJS.ErrnoException).code
  // The address, not the port, is what cannot be used: name the option to fix.
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new FusionError('BAD_OPTION', `--host ${host} is not an address of this machine (${code})`, { cause })
  }
  const why = code === 'EADDRINUSE' ? 'is in use' : code === 'EACCES' ? 'needs more privileges' : `cannot be used (${code ?? String(cause)})`
  return new FusionError('PORT_IN_USE', `--${flag} ${port} ${why}`, { cause })
}

/** A wildcard bind is reachable on loopback: name that, so the URL works as printed. */
function displayHost (host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}
