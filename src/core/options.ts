import { FusionError } from './errors.js'

/** Everything the gateway can be told; every number finite by default, with the reason. */
export interface GatewayOptions {
  /** Address every door binds. @default '0.0.0.0' */
  host: string
  /** HTTP port for pages, REST, /ws and /mqtt; 0 picks a free port. @default 3000 */
  httpPort: number
  /** MQTT/TCP port; 0 picks a free port. @default 1883 */
  mqttPort: number
  /** Where the broker state and the history log live. @default './data' */
  dataDir: string
  /** Keep nothing on disk. @default false */
  memory: boolean
  /** Redis URL for scale-out; undefined for a single node. */
  redis?: string | undefined
  /** Chat messages kept per topic and sent in the `history` frame. @default 50 */
  historyLimit: number
  /**
   * Largest payload a client may publish through any door, in bytes. Stops one client
   * from making every subscriber buffer a huge message. @default 262144 (256 KiB)
   */
  maxPayload: number
  /**
   * Largest MQTT packet accepted; Aedes 1.x has no such limit and would buffer a
   * declared 256 MB packet. @default 266240 (maxPayload plus room for the topic)
   */
  maxPacket: number
  /** Subscriptions one /ws client may hold; stops a client from growing the router. @default 100 */
  maxSubscriptions: number
  /** Longest topic or filter in UTF-8 bytes (the MQTT ceiling is 65,535). @default 1024 */
  maxTopicLength: number
  /** Most levels in a topic or filter; deep topics cost the matcher. @default 32 */
  maxTopicLevels: number
  /**
   * Bytes a /ws client may have queued unsent before it is closed with 1013, so a client
   * that stops reading cannot grow the server's memory. @default 4194304 (4 MiB)
   */
  sendHighWaterMark: number
  /** Milliseconds between WebSocket pings; a peer that misses one is dropped. @default 30000 */
  heartbeatMs: number
  /** Milliseconds close() waits for clients before it terminates them. @default 2000 */
  closeTimeoutMs: number
  /**
   * Hold each MQTT QoS 1 PUBACK until the message is stored for offline sessions and in
   * the history log (stock Aedes acknowledges first). Off only to measure the cost.
   * @default true
   */
  holdPuback: boolean
  /** Oldest history kept, in milliseconds; older messages are swept. @default 2592000000 (30 days) */
  historyMaxAgeMs: number
  /** Messages kept per logged topic; bounds the disk. @default 1000 */
  historyMaxPerTopic: number
  /** Comma-separated filters whose messages the history log keeps. @default 'chat/#' */
  historyTopics: string
  /**
   * Users file (`name:scrypt$...` lines, written by `mqtt-fusion user add`); auth is on
   * when set: MQTT clients log in with a password, pages with a token from POST /api/login.
   * Stops anyone who can reach a port from reading and writing every topic. @default undefined (auth off)
   */
  users?: string | undefined
  /**
   * Secret that signs login tokens (at least 16 bytes; prefer the environment variable,
   * the command line is visible to other local users). @default undefined (a
   * `fusion-token.secret` file beside the users file, created on first start)
   */
  tokenSecret?: string | undefined
  /** Seconds a login token lives; a stolen token is useful only this long. @default 600 */
  tokenTtlS: number
  /**
   * With auth on, GET /metrics and GET /api/stats need a token: a user's login token, or
   * this fixed one as `Authorization: Bearer ...` (at least 16 characters), for a scraper
   * that cannot log in. Stops anyone who reaches the port from reading the figures. With
   * auth off both stay open and this is not used. @default undefined
   */
  metricsToken?: string | undefined
  /**
   * Mosquitto-like ACL file deciding publish and subscribe on every door. @default
   * undefined (anyone may use every topic except that `$` topics are read-only)
   */
  acl?: string | undefined
  /**
   * Comma-separated origins (`https://host:port`, or `*`) whose pages may open /ws and
   * /mqtt and post to the API besides the gateway's own; stops cross-site WebSocket
   * hijacking. @default undefined (same origin only)
   */
  allowOrigin?: string | undefined
  /** PEM certificate: with tlsKey, the HTTP port serves https/wss and MQTT/TLS listens. @default undefined */
  tlsCert?: string | undefined
  /** PEM private key for tlsCert. @default undefined */
  tlsKey?: string | undefined
  /** MQTT over TLS port, used when TLS is on; 0 picks a free port. @default 8883 */
  mqttsPort: number
  /**
   * Open connections over every door together; stops a flood of sockets from taking
   * every file descriptor. @default 10000
   */
  maxConnections: number
  /**
   * Open connections from one address (an IPv6 /64 counts as one); stops one host from
   * taking every slot. @default 1000
   */
  maxConnectionsPerIp: number
  /**
   * New connections a second from one address, bursts of twice that; stops a host from
   * making the gateway do a handshake and a session per packet. @default 100
   */
  connectRate: number
  /**
   * Messages a second one client may send on any door (a /ws session, an MQTT client, an
   * address for HTTP), bursts of twice that; 0 turns it off. Stops one client from
   * taking the broker's time and every subscriber's bandwidth. @default 1000
   */
  msgRate: number
  /** Name shown in `welcome.server`. */
  serverName: string
}

export const DEFAULTS: Readonly<GatewayOptions> = Object.freeze({
  host: '0.0.0.0',
  httpPort: 3000,
  mqttPort: 1883,
  dataDir: './data',
  memory: false,
  redis: undefined,
  historyLimit: 50,
  maxPayload: 256 * 1024,
  maxPacket: 256 * 1024 + 4096,
  maxSubscriptions: 100,
  maxTopicLength: 1024,
  maxTopicLevels: 32,
  sendHighWaterMark: 4 * 1024 * 1024,
  heartbeatMs: 30_000,
  closeTimeoutMs: 2000,
  holdPuback: true,
  historyMaxAgeMs: 30 * 24 * 3600 * 1000,
  historyMaxPerTopic: 1000,
  historyTopics: 'chat/#',
  users: undefined,
  tokenSecret: undefined,
  tokenTtlS: 600,
  metricsToken: undefined,
  acl: undefined,
  allowOrigin: undefined,
  tlsCert: undefined,
  tlsKey: undefined,
  mqttsPort: 8883,
  maxConnections: 10_000,
  maxConnectionsPerIp: 1000,
  connectRate: 100,
  msgRate: 1000,
  serverName: 'mqtt-fusion/0.1.0'
})

/** Option names as the command line spells them, for error messages. */
export const OPTION_FLAGS: Readonly<Record<keyof GatewayOptions, string>> = Object.freeze({
  host: 'host',
  httpPort: 'http-port',
  mqttPort: 'mqtt-port',
  dataDir: 'data-dir',
  memory: 'memory',
  redis: 'redis',
  historyLimit: 'history-limit',
  maxPayload: 'max-payload',
  maxPacket: 'max-packet',
  maxSubscriptions: 'max-subscriptions',
  maxTopicLength: 'max-topic-length',
  maxTopicLevels: 'max-topic-levels',
  sendHighWaterMark: 'send-high-water-mark',
  heartbeatMs: 'heartbeat-ms',
  closeTimeoutMs: 'close-timeout-ms',
  holdPuback: 'hold-puback',
  historyMaxAgeMs: 'history-max-age-ms',
  historyMaxPerTopic: 'history-max-per-topic',
  historyTopics: 'history-topics',
  users: 'users',
  tokenSecret: 'token-secret',
  tokenTtlS: 'token-ttl-s',
  metricsToken: 'metrics-token',
  acl: 'acl',
  allowOrigin: 'allow-origin',
  tlsCert: 'tls-cert',
  tlsKey: 'tls-key',
  mqttsPort: 'mqtts-port',
  maxConnections: 'max-connections',
  maxConnectionsPerIp: 'max-connections-per-ip',
  connectRate: 'connect-rate',
  msgRate: 'msg-rate',
  serverName: 'server-name'
})

type IntRule = readonly [min: number, max: number]
const INT_RULES: Partial<Record<keyof GatewayOptions, IntRule>> = {
  httpPort: [0, 65535],
  mqttPort: [0, 65535],
  historyLimit: [0, 10_000],
  maxPayload: [1, 64 * 1024 * 1024],
  maxPacket: [64, 256 * 1024 * 1024],
  maxSubscriptions: [1, 100_000],
  maxTopicLength: [1, 65535],
  maxTopicLevels: [1, 100],
  sendHighWaterMark: [1024, 1024 * 1024 * 1024],
  heartbeatMs: [100, 3_600_000],
  closeTimeoutMs: [0, 60_000],
  historyMaxAgeMs: [1000, 10 * 365 * 24 * 3600 * 1000],
  historyMaxPerTopic: [1, 1_000_000],
  tokenTtlS: [10, 7 * 24 * 3600],
  mqttsPort: [0, 65535],
  maxConnections: [1, 1_000_000],
  maxConnectionsPerIp: [1, 1_000_000],
  connectRate: [1, 1_000_000],
  msgRate: [0, 10_000_000]
}

const BOOLEAN_KEYS = new Set<keyof GatewayOptions>(['memory', 'holdPuback'])

/**
 * Checks options against the rules, reporting every problem in one error, and returns
 * a frozen copy: nobody downstream can change what was decided here.
 */
export function resolveOptions (input: Partial<Record<keyof GatewayOptions, unknown>> = {}): Readonly<GatewayOptions> {
  const problems: string[] = []
  const out: Record<string, unknown> = { ...DEFAULTS }
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue
    const name = key as keyof GatewayOptions
    if (!(name in DEFAULTS)) {
      problems.push(`unknown option "${key}"`)
      continue
    }
    const flag = `--${OPTION_FLAGS[name]}`
    const rule = INT_RULES[name]
    if (rule) {
      const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value
      if (typeof n !== 'number' || !Number.isInteger(n) || n < rule[0] || n > rule[1]) {
        problems.push(`${flag} must be a whole number from ${rule[0]} to ${rule[1]} (got ${JSON.stringify(value)})`)
      } else {
        out[name] = n
      }
    } else if (BOOLEAN_KEYS.has(name)) {
      if (typeof value === 'boolean') out[name] = value
      else if (value === '1' || value === 'true' || value === '') out[name] = true
      else if (value === '0' || value === 'false') out[name] = false
      else problems.push(`${flag} must be true or false (got ${JSON.stringify(value)})`)
    } else if (typeof value !== 'string' || value.length === 0) {
      problems.push(`${flag} must be a non-empty string (got ${JSON.stringify(value)})`)
    } else if (name === 'redis' && !/^rediss?:\/\//.test(value)) {
      problems.push(`${flag} must be a redis:// URL (got ${JSON.stringify(value)})`)
    } else {
      out[name] = value
    }
  }
  if ((out.tlsCert === undefined) !== (out.tlsKey === undefined)) problems.push('--tls-cert and --tls-key go together')
  // A short fixed token could be guessed: it is checked on every scrape, without a throttle.
  if (typeof out.metricsToken === 'string' && out.metricsToken.length < 16) problems.push('--metrics-token must be at least 16 characters')
  if (problems.length) throw new FusionError('BAD_OPTION', problems.join('; '))
  // A bigger --max-payload must fit through the MQTT doors too: unless told otherwise,
  // the packet limit follows it, with room for the longest topic and the headers.
  if (input.maxPacket === undefined) {
    out.maxPacket = Math.max(DEFAULTS.maxPacket, (out.maxPayload as number) + (out.maxTopicLength as number) + 64)
  }
  return Object.freeze(out) as unknown as Readonly<GatewayOptions>
}
