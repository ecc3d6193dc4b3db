import { readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { FusionError } from '../../core/errors.js'
import { checkTopicFilter, checkTopicName } from '../../core/topics/topic-rules.js'
import { compileRule, type CompiledRule, type Direction } from './rules.js'

/**
 * The bridge file (`--bridge FILE`), Mosquitto's bridge section in spirit:
 *
 * ```
 * connection cloud
 * url mqtts://broker.example.com:8883
 * client-id gateway-7
 * username gw7
 * password s3cret
 * ca certs/ca.pem
 * topic sensors/# out 1 "" site7/
 * topic cmd/# in 1 site7/ ""
 * ```
 *
 * Every line is `keyword value...`; `#` starts a comment line; `""` is an empty value.
 * The file is read once at start. It comes from an operator, but it is parsed as if it
 * did not: bounded size, bounded counts, and every error names its line.
 */

/** Largest bridge file read; a config is a few kilobytes. */
export const MAX_FILE_BYTES = 256 * 1024
/** Longest line; stops one huge line from making a huge error message or token list. */
export const MAX_LINE_CHARS = 4096
/** Upstream connections per file: each is a socket, a queue and a reconnect timer. */
export const MAX_CONNECTIONS = 32
/** Topic rules per connection: every message is matched against them in order. */
export const MAX_RULES = 256
/** Largest CA, certificate or key file read. */
export const MAX_PEM_BYTES = 1024 * 1024

export interface UpstreamConfig {
  /** `[A-Za-z0-9_-]{1,64}`: it appears in the ACL user `bridge:<name>`, `$SYS` topics and metric labels. */
  readonly name: string
  readonly url: string
  readonly clientId: string
  readonly username?: string | undefined
  readonly password?: string | undefined
  /** PEM contents, read from the files the config names. */
  readonly ca?: Buffer | undefined
  readonly cert?: Buffer | undefined
  readonly key?: Buffer | undefined
  /** Seconds; 0 turns keepalive off ([MQTT-3.1.2-10]). @default 60 */
  readonly keepalive: number
  /** Start a fresh session on every connect. @default false (the upstream keeps our subscriptions and QoS 1 messages) */
  readonly clean: boolean
  /** MQTT version spoken upstream. @default 5 (its "no local" subscriptions keep `both` rules from echoing) */
  readonly protocolVersion: 4 | 5
  /** MQTT 5 session expiry in seconds with `clean false`. @default 86400 */
  readonly sessionExpiry: number
  /** QoS 1 messages queued for the upstream; the oldest is dropped past it. @default 100000 */
  readonly queueMaxMessages: number
  /** Bytes of queued payload and topics; the oldest is dropped past it. @default 67108864 (64 MiB) */
  readonly queueMaxBytes: number
  /** QoS 1 messages sent and not yet acknowledged; the upstream's Receive Maximum lowers it. @default 100 */
  readonly maxInflight: number
  /** First reconnect delay; doubles each failure up to reconnectMaxMs, with jitter. @default 1000 */
  readonly reconnectMinMs: number
  /** @default 60000 */
  readonly reconnectMaxMs: number
  readonly rules: readonly CompiledRule[]
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const NAME = /^[A-Za-z0-9_-]{1,64}$/
const SCHEMES = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:'])
const DIRECTIONS = new Set<Direction>(['in', 'out', 'both'])
// Checking rule syntax only; the doors check real topics against the configured limits.
const RULE_LIMITS = { maxTopicLength: 65535, maxTopicLevels: 100 }

const INT_KEYS: Record<string, { key: keyof UpstreamConfig, min: number, max: number }> = {
  keepalive: { key: 'keepalive', min: 0, max: 65535 },
  'session-expiry': { key: 'sessionExpiry', min: 0, max: 0xffffffff },
  'queue-max-messages': { key: 'queueMaxMessages', min: 1, max: 10_000_000 },
  'queue-max-bytes': { key: 'queueMaxBytes', min: 1024, max: 16 * 1024 * 1024 * 1024 },
  'max-inflight': { key: 'maxInflight', min: 1, max: 65535 },
  'reconnect-min-ms': { key: 'reconnectMinMs', min: 100, max: 3_600_000 },
  'reconnect-max-ms': { key: 'reconnectMaxMs', min: 100, max: 3_600_000 }
}

const DEFAULTS = {
  keepalive: 60,
  clean: false,
  protocolVersion: 5 as const,
  sessionExpiry: 86_400,
  queueMaxMessages: 100_000,
  queueMaxBytes: 64 * 1024 * 1024,
  maxInflight: 100,
  reconnectMinMs: 1000,
  reconnectMaxMs: 60_000
}

/** Splits a line into words; `""` is an empty word. Quotes elsewhere are ordinary characters. */
function words (line: string): string[] {
  return line.split(/\s+/).filter(Boolean).map((w) => (w === '""' ? '' : w))
}

/** Reads a file no larger than `max` bytes. */
function readBounded (file: string, max: number, what: string): Buffer {
  let size: number
  try {
    size = statSync(file).size
  } catch (err) {
    throw new FusionError('BAD_OPTION', `${what} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  if (size > max) throw new FusionError('BAD_OPTION', `${what} ${file} is ${size} bytes; the limit is ${max}`)
  return readFileSync(file)
}

/**
 * Parses the bridge file text. `readPem` reads a CA/cert/key file named on a line
 * (relative to the bridge file); tests pass their own. Throws BAD_OPTION naming the line.
 */
export function parseUpstreamConfig (text: string, source = 'bridge', readPem: (file: string) => Buffer = (f) => readBounded(f, MAX_PEM_BYTES, 'file')): UpstreamConfig[] {
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw new FusionError('BAD_OPTION', `--bridge ${source} is over ${MAX_FILE_BYTES} bytes`)
  const out: Array<Mutable<UpstreamConfig> & { opened: number }> = []
  const lines = text.split(/\r?\n/)
  let current: (Mutable<UpstreamConfig> & { opened: number }) | undefined
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n] as string
    const fail = (why: string): never => { throw new FusionError('BAD_OPTION', `--bridge ${source} line ${n + 1}: ${why}`) }
    if (raw.length > MAX_LINE_CHARS) fail(`the line is over ${MAX_LINE_CHARS} characters`)
    const line = raw.trim()
    if (line.length === 0 || line.startsWith('#')) continue
    const [keyword = '', ...args] = words(line)
    const one = (): string => {
      if (args.length !== 1) fail(`${keyword} takes one value (got ${args.length})`)
      return args[0] as string
    }
    if (keyword === 'connection') {
      const name = one()
      if (!NAME.test(name)) fail(`connection name "${name.slice(0, 80)}" must be 1 to 64 letters, digits, - or _`)
      if (out.some((c) => c.name === name)) fail(`connection "${name}" is named twice`)
      if (out.length >= MAX_CONNECTIONS) fail(`more than ${MAX_CONNECTIONS} connections`)
      current = { name, url: '', clientId: `fusion-bridge-${name}`, ...DEFAULTS, rules: [], opened: n + 1 }
      out.push(current)
      continue
    }
    if (!current) return fail(`${keyword.slice(0, 40)} before the first "connection NAME" line`)
    const c = current
    const int = INT_KEYS[keyword]
    if (int) {
      const v = one()
      const num = /^\d+$/.test(v) ? Number(v) : NaN
      if (!Number.isSafeInteger(num) || num < int.min || num > int.max) fail(`${keyword} must be a whole number from ${int.min} to ${int.max} (got "${v.slice(0, 40)}")`)
      ;(c as Record<string, unknown>)[int.key] = num
      continue
    }
    switch (keyword) {
      case 'url': {
        const v = one()
        let u: URL | undefined
        try { u = new URL(v) } catch {}
        if (!u || !SCHEMES.has(u.protocol) || !u.hostname) fail(`url must be mqtt://, mqtts://, ws:// or wss:// with a host (got "${v.slice(0, 80)}")`)
        if (u!.username || u!.password) fail('put the user name and password on their own lines, not in the url')
        c.url = v
        break
      }
      case 'client-id': {
        const v = one()
        if (v.length === 0 || Buffer.byteLength(v) > 256 || /[\u0000-\u001f]/.test(v)) fail('client-id must be 1 to 256 bytes with no control characters')
        c.clientId = v
        break
      }
      case 'username': c.username = one(); break
      case 'password': c.password = one(); break
      case 'ca': case 'cert': case 'key': {
        const file = resolve(dirname(resolve(source)), one())
        try { c[keyword] = readPem(file) } catch (err) { fail(`${keyword}: ${(err as Error).message}`) }
        break
      }
      case 'clean': {
        const v = one()
        if (v !== 'true' && v !== 'false') fail(`clean must be true or false (got "${v.slice(0, 40)}")`)
        c.clean = v === 'true'
        break
      }
      case 'protocol': {
        const v = one()
        if (v !== '5' && v !== '3.1.1') fail(`protocol must be 5 or 3.1.1 (got "${v.slice(0, 40)}")`)
        c.protocolVersion = v === '5' ? 5 : 4
        break
      }
      case 'topic': {
        if (c.rules.length >= MAX_RULES) fail(`more than ${MAX_RULES} topic rules in connection ${c.name}`)
        c.rules = [...c.rules, parseTopicLine(args, n + 1, fail)]
        break
      }
      default:
        fail(`unknown keyword "${keyword.slice(0, 40)}"`)
    }
  }
  for (const c of out) {
    const fail = (why: string): never => { throw new FusionError('BAD_OPTION', `--bridge ${source} connection ${c.name} (line ${c.opened}): ${why}`) }
    if (!c.url) fail('needs a url line')
    if (c.rules.length === 0) fail('needs at least one topic line')
    if (c.reconnectMaxMs < c.reconnectMinMs) fail('reconnect-max-ms is below reconnect-min-ms')
    if ((c.cert === undefined) !== (c.key === undefined)) fail('cert and key go together')
    if ((c.ca || c.cert) && !/^(mqtts|wss):/.test(c.url)) fail('ca, cert and key need an mqtts:// or wss:// url')
    if (c.password !== undefined && c.username === undefined) fail('a password needs a username')
  }
  return out.map(({ opened: _, ...c }) => Object.freeze(c))
}

/** `topic pattern [in|out|both] [qos] [local-prefix remote-prefix]`, as Mosquitto reads it. */
function parseTopicLine (args: string[], line: number, fail: (why: string) => never): CompiledRule {
  if (args.length < 1 || args.length > 5 || args.length === 4) fail('topic takes: pattern [in|out|both] [qos] [local-prefix remote-prefix]')
  const [pattern = '', dir = 'out', qosWord = '0', localPrefix = '', remotePrefix = ''] = args
  if (!DIRECTIONS.has(dir as Direction)) fail(`direction must be in, out or both (got "${dir.slice(0, 40)}")`)
  if (qosWord === '2') fail('qos 2 is not carried over a bridge; use 1 (at least once, in order, stored while the link is down)')
  if (qosWord !== '0' && qosWord !== '1') fail(`qos must be 0 or 1 (got "${qosWord.slice(0, 40)}")`)
  for (const [what, p] of [['local-prefix', localPrefix], ['remote-prefix', remotePrefix]] as const) {
    if (/[+#\u0000]/.test(p)) fail(`${what} "${p.slice(0, 80)}" must not hold + # or NUL`)
  }
  if (pattern === '') {
    // Mosquitto: an empty pattern makes each prefix a whole topic name.
    if (!localPrefix || !remotePrefix) fail('an empty pattern needs both prefixes (each is then a whole topic)')
    try { checkTopicName(localPrefix, RULE_LIMITS); checkTopicName(remotePrefix, RULE_LIMITS) } catch (err) { fail((err as Error).message) }
  } else {
    try {
      checkTopicFilter(pattern, RULE_LIMITS)
      checkTopicFilter(localPrefix + pattern, RULE_LIMITS)
      checkTopicFilter(remotePrefix + pattern, RULE_LIMITS)
    } catch (err) { fail(`"${pattern.slice(0, 80)}": ${(err as Error).message}`) }
  }
  return compileRule({ pattern, direction: dir as Direction, qos: qosWord === '1' ? 1 : 0, localPrefix, remotePrefix, line })
}

/** Reads and parses `--bridge FILE`. */
export function loadUpstreamConfig (file: string): UpstreamConfig[] {
  const text = readBounded(file, MAX_FILE_BYTES, '--bridge').toString('utf8')
  return parseUpstreamConfig(text, file)
}
