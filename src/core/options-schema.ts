import { NAME, VERSION } from './version.js'

// THE ONE PLACE OPTIONS ARE DECLARED.
//
// Every option of the gateway is one entry of OPTIONS below: its name (the key), type,
// default, command-line flag, environment variable, range, group and help text. Everything
// else is derived from it: the GatewayOptions type, DEFAULTS and the checks of
// resolveOptions (core/options.ts), the flags, environment variables and `--help` of the
// command line (cli/args.ts), and the option tables of README.md, docs/PROTOCOL.md and
// docs/SECURITY.md (`npm run docs:options`; test/unit/cli/options-doc.test.ts fails when a
// committed table differs from what the schema gives).
//
// To add an option: add one entry here (in its group), run `npm run docs:options`, and read
// it where it is used (`options.myOption`). A test checks that the entry is complete: the
// flag is the key in kebab case, the environment variable is FUSION_ plus the flag in upper
// snake case, a number has a finite range that holds its default, a limit says what it stops.

/** Where an option is listed in `--help` and in the docs, in this order. */
export const OPTION_GROUPS = [
  { id: 'doors', title: 'Doors' },
  { id: 'storage', title: 'Storage and cluster' },
  { id: 'history', title: 'History' },
  { id: 'security', title: 'Security (docs/SECURITY.md)' },
  { id: 'limits', title: 'Limits (docs/SECURITY.md)' },
  { id: 'process', title: 'Process' }
] as const

export type OptionGroup = typeof OPTION_GROUPS[number]['id']

interface OptionBase {
  /** The command-line flag without its dashes: the key in kebab case. */
  readonly flag: string
  /** The environment variable: FUSION_ plus the flag in upper snake case, unless the contract named it otherwise. */
  readonly env: string
  readonly group: OptionGroup
  /** One line for `--help` and the docs: what it sets (plain text, no Markdown). */
  readonly help: string
  /** For a limit: what it stops (Markdown, for docs/SECURITY.md's table). */
  readonly stops?: string
  /** Named in the shared contract (PROTOCOL.md): its flag and variable never change. */
  readonly contract?: true
}

/** A whole number in [min, max]; a string of digits from the command line is read as one. */
export interface IntOption extends OptionBase {
  readonly type: 'int'
  readonly default: number
  readonly min: number
  readonly max: number
  /** What `--help` shows for the value, e.g. `N`, `MS`. */
  readonly arg: string
  /** How the docs show a value in plain words (`262144 (256 KiB)`). */
  readonly unit?: 'bytes' | 'ms' | 's'
}

/** true or false; from text `1`/`true`/empty and `0`/`false`. */
export interface BooleanOption extends OptionBase {
  readonly type: 'boolean'
  readonly default: boolean
  /** Absent: a switch (`--memory`) that can only turn it on. Present: takes a value (`--hold-puback false`). */
  readonly arg?: string
}

/** A non-empty string; `default: undefined` makes the option optional (unset: `unset` says what happens). */
export interface StringOption extends OptionBase {
  readonly type: 'string'
  readonly default: string | undefined
  readonly arg: string
  /** What the gateway does when the option is not given (required when the default is undefined). */
  readonly unset?: string
  /** How help and docs show a default computed at start (the docs must not change with the version). */
  readonly shown?: string
  /** A value must match this, else `--flag must be <format>`. */
  readonly pattern?: RegExp
  readonly format?: string
}

export type OptionSpec = IntOption | BooleanOption | StringOption

const KiB = 1024
const MiB = 1024 * KiB
const SECOND = 1000
const DAY = 24 * 3600 * SECOND

/** Every option of the gateway. Each limit is finite by default and says what it stops. */
export const OPTIONS = {
  // ---- doors
  host: {
    type: 'string', flag: 'host', env: 'FUSION_HOST', group: 'doors', contract: true, arg: 'ADDR',
    default: '0.0.0.0',
    help: 'address every door binds'
  },
  httpPort: {
    type: 'int', flag: 'http-port', env: 'FUSION_HTTP_PORT', group: 'doors', contract: true, arg: 'N',
    default: 3000, min: 0, max: 65535,
    help: 'HTTP port for the pages, REST, /ws and /mqtt; 0 picks a free port'
  },
  mqttPort: {
    type: 'int', flag: 'mqtt-port', env: 'FUSION_MQTT_PORT', group: 'doors', contract: true, arg: 'N',
    default: 1883, min: 0, max: 65535,
    help: 'MQTT over TCP; 0 picks a free port'
  },

  // ---- storage and cluster
  dataDir: {
    type: 'string', flag: 'data-dir', env: 'FUSION_DATA_DIR', group: 'storage', contract: true, arg: 'DIR',
    default: './data',
    help: 'where the history log and the broker state live'
  },
  memory: {
    type: 'boolean', flag: 'memory', env: 'FUSION_MEMORY', group: 'storage', contract: true,
    default: false,
    help: 'keep nothing on disk: history, retained messages and sessions end with the process'
  },
  redis: {
    // The contract names this variable FUSION_REDIS_URL, not FUSION_REDIS.
    type: 'string', flag: 'redis', env: 'FUSION_REDIS_URL', group: 'storage', contract: true, arg: 'URL',
    default: undefined, unset: 'a single node',
    pattern: /^rediss?:\/\//, format: 'a redis:// URL',
    help: 'share the topic space with the other nodes on this Redis (redis:// or rediss://)'
  },
  bridge: {
    type: 'string', flag: 'bridge', env: 'FUSION_BRIDGE', group: 'storage', arg: 'FILE',
    default: undefined, unset: 'no upstream broker',
    help: 'bridge file: upstream brokers and the topics carried to and from them, stored while a link is down (docs/BRIDGE.md)'
  },
  holdPuback: {
    // Stock Aedes acknowledges first and loses acknowledged messages on a crash.
    type: 'boolean', flag: 'hold-puback', env: 'FUSION_HOLD_PUBACK', group: 'storage', arg: 'BOOL',
    default: true,
    help: 'hold each MQTT QoS 1 PUBACK until the message is stored for offline sessions and in the history log (false only to measure the cost)'
  },

  // ---- history
  historyLimit: {
    type: 'int', flag: 'history-limit', env: 'FUSION_HISTORY_LIMIT', group: 'history', arg: 'N',
    default: 50, min: 0, max: 10_000,
    help: 'chat messages per topic sent in the history frame'
  },
  historyTopics: {
    type: 'string', flag: 'history-topics', env: 'FUSION_HISTORY_TOPICS', group: 'history', arg: 'LIST',
    default: 'chat/#',
    help: 'comma-separated filters whose messages the history log keeps'
  },
  historyMaxPerTopic: {
    type: 'int', flag: 'history-max-per-topic', env: 'FUSION_HISTORY_MAX_PER_TOPIC', group: 'history', arg: 'N',
    default: 1000, min: 1, max: 1_000_000,
    help: 'messages kept per logged topic',
    stops: 'a busy topic filling the disk with history'
  },
  historyMaxAgeMs: {
    type: 'int', flag: 'history-max-age-ms', env: 'FUSION_HISTORY_MAX_AGE_MS', group: 'history', arg: 'MS', unit: 'ms',
    default: 30 * DAY, min: SECOND, max: 3650 * DAY,
    help: 'oldest history kept, in milliseconds; older messages are swept'
  },
  historyMaxTopics: {
    type: 'int', flag: 'history-max-topics', env: 'FUSION_HISTORY_MAX_TOPICS', group: 'history', arg: 'N',
    default: 10_000, min: 1, max: 10_000_000,
    help: 'distinct topics the history log keeps; a message on a new topic over it is delivered but not logged',
    stops: 'a client publishing on endless new logged topics growing the log and its per-topic sequence map without bound (counted in `stored.historyTopicsRefused`)'
  },

  // ---- security
  users: {
    type: 'string', flag: 'users', env: 'FUSION_USERS', group: 'security', arg: 'FILE',
    default: undefined, unset: 'auth off',
    help: 'turn auth on with this users file: MQTT clients log in with a password, pages with a token from POST /api/login (add users with: mqtt-fusion user add NAME --users FILE)'
  },
  tokenSecret: {
    type: 'string', flag: 'token-secret', env: 'FUSION_TOKEN_SECRET', group: 'security', arg: 'SECRET',
    default: undefined, unset: 'a fusion-token.secret file beside the users file, created on first start',
    help: 'secret that signs login tokens, at least 16 bytes (prefer the variable: a command line is visible to other local users)'
  },
  tokenTtlS: {
    type: 'int', flag: 'token-ttl-s', env: 'FUSION_TOKEN_TTL_S', group: 'security', arg: 'N', unit: 's',
    default: 600, min: 10, max: 7 * 24 * 3600,
    help: 'seconds a login token lives',
    stops: 'a stolen token being useful for long'
  },
  metricsToken: {
    // A short fixed token could be guessed: it is checked on every scrape, without a throttle.
    type: 'string', flag: 'metrics-token', env: 'FUSION_METRICS_TOKEN', group: 'security', arg: 'TOKEN',
    default: undefined, unset: 'with auth on, /metrics and /api/stats take a login token only',
    pattern: /^[\s\S]{16,}$/, format: 'at least 16 characters',
    help: 'with auth on, a fixed Bearer token that may read /metrics and /api/stats, for a scraper that cannot log in (a login token works too; with auth off both stay open)'
  },
  acl: {
    type: 'string', flag: 'acl', env: 'FUSION_ACL', group: 'security', arg: 'FILE',
    default: undefined, unset: 'anyone may use every topic, except that $ topics are read-only',
    help: 'Mosquitto-like ACL file deciding publish and subscribe on every door'
  },
  denyAction: {
    type: 'string', flag: 'deny-action', env: 'FUSION_DENY_ACTION', group: 'security', arg: 'ACTION',
    default: 'ignore', pattern: /^(ignore|disconnect)$/, format: 'ignore or disconnect',
    help: 'what a refused MQTT publish does: ignore (acknowledged and dropped, as Mosquitto and EMQX do) or disconnect'
  },
  allowOrigin: {
    // Stops cross-site WebSocket hijacking: a page of another origin using the user's cookie.
    type: 'string', flag: 'allow-origin', env: 'FUSION_ALLOW_ORIGIN', group: 'security', arg: 'LIST',
    default: undefined, unset: 'same origin only',
    help: 'other page origins (https://host:port, comma-separated, or a star for any) that may open /ws and /mqtt and post to the API'
  },
  trustProxy: {
    // Behind HAProxy every client has the proxy's address: one cap for all of them.
    type: 'string', flag: 'trust-proxy', env: 'FUSION_TRUST_PROXY', group: 'security', arg: 'LIST',
    default: undefined, unset: 'no proxy is trusted: the address is always the peer\'s',
    help: 'proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For (HTTP, upgrades) and PROXY protocol v1/v2 (MQTT/TCP) name the client'
  },
  tlsCert: {
    type: 'string', flag: 'tls-cert', env: 'FUSION_TLS_CERT', group: 'security', arg: 'FILE',
    default: undefined, unset: 'TLS off',
    help: 'PEM certificate; with --tls-key the HTTP port serves https and wss, and MQTT over TLS listens'
  },
  tlsKey: {
    type: 'string', flag: 'tls-key', env: 'FUSION_TLS_KEY', group: 'security', arg: 'FILE',
    default: undefined, unset: 'TLS off',
    help: 'PEM private key of --tls-cert'
  },
  mqttsPort: {
    type: 'int', flag: 'mqtts-port', env: 'FUSION_MQTTS_PORT', group: 'security', arg: 'N',
    default: 8883, min: 0, max: 65535,
    help: 'MQTT over TLS, when TLS is on; 0 picks a free port'
  },

  // ---- limits
  maxPayload: {
    type: 'int', flag: 'max-payload', env: 'FUSION_MAX_PAYLOAD', group: 'limits', arg: 'N', unit: 'bytes',
    default: 256 * KiB, min: 1, max: 64 * MiB,
    help: 'largest payload a client may publish through any door, in bytes',
    stops: 'one client making every subscriber buffer a huge message; `TOO_LARGE` on `/ws` and HTTP, connection closed on MQTT'
  },
  maxPacket: {
    type: 'int', flag: 'max-packet', env: 'FUSION_MAX_PACKET', group: 'limits', arg: 'N', unit: 'bytes',
    default: 256 * KiB + 4096, min: 64, max: 256 * MiB,
    help: 'largest MQTT packet, in bytes; unless given, it grows with --max-payload to hold the payload, the longest topic and the headers',
    stops: 'Aedes 1.x buffering whatever a fixed header declares (up to 256 MB): the MQTT doors read the remaining length and cut the stream at the header ([MQTT-2.2.3]: a fifth length byte is cut too)'
  },
  maxSubscriptions: {
    type: 'int', flag: 'max-subscriptions', env: 'FUSION_MAX_SUBSCRIPTIONS', group: 'limits', arg: 'N',
    default: 100, min: 1, max: 100_000,
    help: 'subscriptions one /ws client may hold (its room counts)',
    stops: 'one client growing the router with thousands of filters: `LIMIT_EXCEEDED`'
  },
  maxTopicLength: {
    type: 'int', flag: 'max-topic-length', env: 'FUSION_MAX_TOPIC_LENGTH', group: 'limits', arg: 'N',
    default: 1024, min: 1, max: 65535,
    help: 'longest topic or filter in UTF-8 bytes (MQTT allows 65535)',
    stops: 'long topics costing every match and every stored message: `LIMIT_EXCEEDED`'
  },
  maxTopicLevels: {
    type: 'int', flag: 'max-topic-levels', env: 'FUSION_MAX_TOPIC_LEVELS', group: 'limits', arg: 'N',
    default: 32, min: 1, max: 100,
    help: 'most levels in a topic or filter',
    stops: 'deep topics costing every match: `LIMIT_EXCEEDED`'
  },
  sendHighWaterMark: {
    type: 'int', flag: 'send-high-water-mark', env: 'FUSION_SEND_HIGH_WATER_MARK', group: 'limits', arg: 'N', unit: 'bytes',
    default: 4 * MiB, min: KiB, max: 1024 * MiB,
    help: 'bytes queued unsent to one client before it is dropped',
    stops: 'a reader that stops reading growing our memory. `/ws`: closed with 1013. MQTT (both doors): cut at once, instead of Aedes waiting for `drain` while every publisher to its topics waits too (`src/doors/mqtt-tcp/send-queue.ts`)'
  },
  heartbeatMs: {
    type: 'int', flag: 'heartbeat-ms', env: 'FUSION_HEARTBEAT_MS', group: 'limits', arg: 'MS', unit: 'ms',
    default: 30 * SECOND, min: 100, max: 3600 * SECOND,
    help: 'milliseconds between WebSocket pings; a peer that misses one is dropped',
    stops: 'dead `/ws` and `/mqtt` peers (power cut, NAT timeout): pinged each interval, dropped when they missed one, so within two intervals'
  },
  presenceIntervalMs: {
    type: 'int', flag: 'presence-interval-ms', env: 'FUSION_PRESENCE_INTERVAL_MS', group: 'limits', arg: 'MS', unit: 'ms',
    default: 250, min: 10, max: 10 * SECOND,
    help: 'milliseconds over which presence changes are gathered into one frame for every /ws client',
    stops: 'a join storm costing N x N frames: each interval, every `/ws` client with presence gets at most one `presence-batch` frame (or a few `presence` frames, docs/PROTOCOL.md), whatever the number of joins'
  },
  presenceRoster: {
    type: 'int', flag: 'presence-roster', env: 'FUSION_PRESENCE_ROSTER', group: 'limits', arg: 'N',
    default: 50, min: 0, max: 1000,
    help: 'clients listed in a presence-batch frame (the most recent); the count covers everyone',
    stops: 'a roster as large as the room sent to every client on every join; the rest is paged with `GET /api/presence`'
  },
  maxConnections: {
    type: 'int', flag: 'max-connections', env: 'FUSION_MAX_CONNECTIONS', group: 'limits', arg: 'N',
    default: 10_000, min: 1, max: 1_000_000,
    help: 'open connections over every door together',
    stops: 'a flood of sockets taking every file descriptor; refused before any protocol work (MQTT: closed; upgrades: 503 `LIMIT_EXCEEDED`)'
  },
  maxConnectionsPerIp: {
    type: 'int', flag: 'max-connections-per-ip', env: 'FUSION_MAX_CONNECTIONS_PER_IP', group: 'limits', arg: 'N',
    default: 1000, min: 1, max: 1_000_000,
    help: 'open connections from one address (an IPv6 /64 counts as one)',
    stops: 'one host taking every slot'
  },
  connectRate: {
    type: 'int', flag: 'connect-rate', env: 'FUSION_CONNECT_RATE', group: 'limits', arg: 'N',
    default: 100, min: 1, max: 1_000_000,
    help: 'new connections a second from one address, bursts of twice that',
    stops: 'a host making the gateway do a handshake and a session per packet (MQTT: closed; upgrades: 429 `RATE_LIMITED`)'
  },
  msgRate: {
    type: 'int', flag: 'msg-rate', env: 'FUSION_MSG_RATE', group: 'limits', arg: 'N',
    default: 1000, min: 0, max: 10_000_000,
    help: 'messages a second one client may send on any door, bursts of twice that; 0 turns it off',
    stops: "one client taking the broker's time and every subscriber's bandwidth. A token bucket per `/ws` session, per MQTT client (its will is exempt), per address for HTTP (`src/core/policy/token-bucket.ts`)"
  },

  maxRetained: {
    type: 'int', flag: 'max-retained', env: 'FUSION_MAX_RETAINED', group: 'limits', arg: 'N',
    default: 100_000, min: 1, max: 100_000_000,
    help: 'retained topics kept (presence topics aside); a new retained topic over it is not kept',
    stops: 'clients filling the store and the retained index with endless retained topics. /ws and HTTP: refused with `STORE_FULL`; MQTT 3.1.1 cannot refuse one message: delivered to those online, not retained'
  },
  maxRetainedBytes: {
    type: 'int', flag: 'max-retained-bytes', env: 'FUSION_MAX_RETAINED_BYTES', group: 'limits', arg: 'N', unit: 'bytes',
    default: 256 * MiB, min: KiB, max: 64 * 1024 * MiB,
    help: 'bytes of retained topics and payloads kept (presence topics aside); a retained message over it is not kept',
    stops: 'retained payloads filling the disk: as --max-retained'
  },
  maxQueued: {
    type: 'int', flag: 'max-queued', env: 'FUSION_MAX_QUEUED', group: 'limits', arg: 'N',
    default: 1000, min: 1, max: 10_000_000,
    help: 'QoS 1/2 messages queued per offline persistent MQTT session; the oldest are dropped beyond it',
    stops: 'a session that never comes back growing its queue for ever (as Mosquitto\'s `max_queued_messages`, which drops the newest instead); counted in `stored.queueDropped`'
  },
  presenceOfflineKeep: {
    type: 'int', flag: 'presence-offline-keep', env: 'FUSION_PRESENCE_OFFLINE_KEEP', group: 'limits', arg: 'N',
    default: 1000, min: 0, max: 10_000_000,
    help: 'offline clients whose retained presence/<id> is kept (most recent first); older ones are cleared',
    stops: 'every client id ever seen leaving a retained `presence/<id>` for ever; counted in `stored.presencePruned`'
  },

  // ---- process
  closeTimeoutMs: {
    type: 'int', flag: 'close-timeout-ms', env: 'FUSION_CLOSE_TIMEOUT_MS', group: 'process', arg: 'MS', unit: 'ms',
    default: 2 * SECOND, min: 0, max: 60 * SECOND,
    help: 'milliseconds a shutdown waits for clients and listeners before it cuts them',
    stops: 'a client that never answers the close holding up a shutdown; the command exits anyway 5 s after this'
  },
  serverName: {
    type: 'string', flag: 'server-name', env: 'FUSION_SERVER_NAME', group: 'process', arg: 'NAME',
    default: `${NAME}/${VERSION}`, shown: 'mqtt-fusion/VERSION (package.json)',
    help: 'name sent in the server field of the welcome frame'
  },
  allowUntestedLibs: {
    // The engine patches private parts of Aedes, ws, mqtt-packet... (src/engine/internals/).
    type: 'boolean', flag: 'allow-untested-libs', env: 'FUSION_ALLOW_UNTESTED_LIBS', group: 'process',
    default: false,
    help: 'start even when Aedes, ws, mqtt-packet or a persistence is not the version the engine was tested with (a warning instead of UNTESTED_LIBRARY)'
  }
} as const satisfies Record<string, OptionSpec>

/** The name of an option, as the code spells it (`httpPort`). */
export type OptionName = keyof typeof OPTIONS

type Schema = typeof OPTIONS
type ValueOf<S> = S extends { type: 'int' } ? number : S extends { type: 'boolean' } ? boolean : string
type Required<K extends OptionName> = undefined extends Schema[K]['default'] ? never : K
type Optional<K extends OptionName> = undefined extends Schema[K]['default'] ? K : never
type Flatten<T> = { [K in keyof T]: T[K] }

/**
 * Everything the gateway can be told, derived from OPTIONS: a number for an `int`, a
 * boolean for a `boolean`, a string for a `string`, and optional (`string | undefined`)
 * when the default is undefined. See each entry of OPTIONS for what it does.
 */
export type GatewayOptions = Flatten<
  { -readonly [K in OptionName as Required<K>]: ValueOf<Schema[K]> } &
  { -readonly [K in OptionName as Optional<K>]?: ValueOf<Schema[K]> | undefined }
>

/** The option names in schema order (grouped). */
export const OPTION_NAMES: readonly OptionName[] = Object.freeze(Object.keys(OPTIONS) as OptionName[])

/** The entry of an option, widened to OptionSpec for code that handles every kind. */
export function optionSpec (name: OptionName): OptionSpec {
  return OPTIONS[name]
}

/** True when `key` names an option (own keys only: `constructor` or `__proto__` are not options). */
export function isOptionName (key: string): key is OptionName {
  return Object.hasOwn(OPTIONS, key)
}
