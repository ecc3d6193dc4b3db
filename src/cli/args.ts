import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { FusionError } from '../core/errors.js'
import { OPTION_FLAGS, type GatewayOptions } from '../core/options.js'

type Raw = Partial<Record<keyof GatewayOptions, unknown>>

/** Environment variable for each option (PROTOCOL.md); the rest are FUSION_ + upper snake. */
const ENV_NAMES: Partial<Record<keyof GatewayOptions, string>> = {
  host: 'FUSION_HOST',
  httpPort: 'FUSION_HTTP_PORT',
  mqttPort: 'FUSION_MQTT_PORT',
  dataDir: 'FUSION_DATA_DIR',
  memory: 'FUSION_MEMORY',
  redis: 'FUSION_REDIS_URL',
  historyLimit: 'FUSION_HISTORY_LIMIT',
  users: 'FUSION_USERS',
  acl: 'FUSION_ACL',
  tokenSecret: 'FUSION_TOKEN_SECRET'
}

const FLAG_TO_KEY = new Map(Object.entries(OPTION_FLAGS).map(([k, f]) => [f, k as keyof GatewayOptions]))

/** The environment variable of an option: PROTOCOL.md's name, else FUSION_ + the flag in upper snake case. */
export function envName (key: keyof GatewayOptions): string {
  return ENV_NAMES[key] ?? `FUSION_${OPTION_FLAGS[key].toUpperCase().replace(/-/g, '_')}`
}

export const USAGE = `Usage: mqtt-fusion [options]

  --host ADDR            address every door binds (FUSION_HOST, default 0.0.0.0)
  --http-port N          pages, REST, /ws and /mqtt (FUSION_HTTP_PORT, default 3000; 0 = any free port)
  --mqtt-port N          MQTT over TCP (FUSION_MQTT_PORT, default 1883; 0 = any free port)
  --data-dir DIR         history and broker state (FUSION_DATA_DIR, default ./data)
  --memory               keep nothing on disk (FUSION_MEMORY=1)
  --redis URL            share the topic space with other nodes (FUSION_REDIS_URL)
  --config FILE          a JSON file with the same keys (FUSION_CONFIG)
  --history-limit N      messages in the history frame (default 50)

 Security (docs/SECURITY.md):
  --users FILE           turn auth on with this users file (FUSION_USERS);
                         add users with: mqtt-fusion user add NAME --users FILE
  --token-secret S       signs login tokens (FUSION_TOKEN_SECRET; default: a file beside --users)
  --token-ttl-s N        seconds a login token lives (default 600)
  --metrics-token S      with auth on, a fixed Bearer token for /metrics and /api/stats
                         (FUSION_METRICS_TOKEN; a login token works too)
  --acl FILE             Mosquitto-like ACL for every door (FUSION_ACL; default: all but $ topics)
  --allow-origin LIST    other page origins allowed to open /ws and /mqtt (comma-separated, or *)
  --tls-cert FILE        with --tls-key: https/wss on the HTTP port and MQTT over TLS
  --tls-key FILE
  --mqtts-port N         MQTT over TLS (default 8883 when TLS is on)
  --max-connections N    open connections, every door together (default 10000)
  --max-connections-per-ip N   (default 1000)
  --connect-rate N       new connections a second per address (default 100)
  --msg-rate N           messages a second per client, every door (default 1000; 0 = off)
  --max-payload N        largest payload in bytes (default 262144)
  -h, --help             this text
  -v, --version          the version

 Signals: SIGINT/SIGTERM stop (WebSocket clients get 1001); SIGHUP rereads --users and --acl.`

export interface CliRequest {
  readonly help: boolean
  readonly version: boolean
  readonly options: Raw
}

/**
 * argv + env (+ config file) -> raw options. Precedence: command line, then
 * environment, then the config file. Values are checked later by resolveOptions.
 */
export function parseCli (argv: readonly string[], env: NodeJS.ProcessEnv): CliRequest {
  const spec: Record<string, { type: 'string' | 'boolean', short?: string }> = {
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' }
  }
  for (const flag of FLAG_TO_KEY.keys()) spec[flag] = { type: flag === 'memory' ? 'boolean' : 'string' }
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false }).values as typeof values
  } catch (err) {
    const message = (err as Error).message.split('\n')[0] ?? 'bad arguments'
    throw new FusionError('BAD_OPTION', `${message.replace(/\.$/, '')} (see --help)`)
  }
  const fromConfig = readConfig((values.config as string | undefined) ?? env.FUSION_CONFIG)
  const options: Raw = { ...fromConfig }
  for (const key of FLAG_TO_KEY.values()) {
    const v = env[envName(key)]
    if (v !== undefined && v !== '') options[key] = v
  }
  for (const [flag, key] of FLAG_TO_KEY) {
    const v = values[flag]
    if (v !== undefined) options[key] = v
  }
  return { help: values.help === true, version: values.version === true, options }
}

function readConfig (file: string | undefined): Raw {
  if (!file) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new FusionError('BAD_OPTION', `--config ${file} cannot be read as JSON (${why})`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FusionError('BAD_OPTION', `--config ${file} must hold a JSON object`)
  }
  const out: Raw = {}
  for (const [k, v] of Object.entries(parsed)) {
    const key = FLAG_TO_KEY.get(k) ?? (k in OPTION_FLAGS ? k as keyof GatewayOptions : undefined)
    if (!key) throw new FusionError('BAD_OPTION', `--config ${file}: unknown key "${k}"`)
    out[key] = v
  }
  return out
}
