import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { FusionError } from '../core/errors.js'
import { OPTIONS, OPTION_NAMES, isOptionName, type OptionName } from '../core/options.js'

// Flags and environment variables come from the options schema (core/options-schema.ts);
// only the few flags that are not gateway options are declared here.

type Raw = Partial<Record<OptionName, unknown>>

/** A flag of the command itself, not a gateway option (shown in `--help` and the docs too). */
export interface CliFlag {
  readonly flag: string
  readonly short?: string
  /** What `--help` shows for the value; absent for a switch. */
  readonly arg?: string
  readonly env?: string
  readonly help: string
}

/** The command's own flags, in `--help` order. */
export const CLI_FLAGS: readonly CliFlag[] = Object.freeze([
  { flag: 'config', arg: 'FILE', env: 'FUSION_CONFIG', help: 'a JSON object of options, keyed by flag (http-port) or name (httpPort)' },
  { flag: 'help', short: 'h', help: 'this text' },
  { flag: 'version', short: 'v', help: 'the version' }
])

const FLAG_TO_KEY: ReadonlyMap<string, OptionName> = new Map(OPTION_NAMES.map((name) => [OPTIONS[name].flag, name]))

/** The environment variable of an option, from the schema (`FUSION_HTTP_PORT`). */
export function envName (key: OptionName): string {
  return OPTIONS[key].env
}

export interface CliRequest {
  readonly help: boolean
  readonly version: boolean
  readonly options: Raw
}

/** parseArgs's description of every flag: a switch is a boolean, anything with a value a string. */
function parseSpec (): Record<string, { type: 'string' | 'boolean', short?: string }> {
  const spec: Record<string, { type: 'string' | 'boolean', short?: string }> = {}
  for (const f of CLI_FLAGS) spec[f.flag] = f.short ? { type: f.arg ? 'string' : 'boolean', short: f.short } : { type: f.arg ? 'string' : 'boolean' }
  for (const name of OPTION_NAMES) {
    const o = OPTIONS[name]
    spec[o.flag] = { type: 'arg' in o ? 'string' : 'boolean' }
  }
  return spec
}

/**
 * argv + env (+ config file) -> raw options. Precedence: command line, then
 * environment, then the config file. Values are checked later by resolveOptions.
 */
export function parseCli (argv: readonly string[], env: NodeJS.ProcessEnv): CliRequest {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: [...argv], options: parseSpec(), strict: true, allowPositionals: false }).values as typeof values
  } catch (err) {
    const message = (err as Error).message.split('\n')[0] ?? 'bad arguments'
    throw new FusionError('BAD_OPTION', `${message.replace(/\.$/, '')} (see --help)`)
  }
  const fromConfig = readConfig((values.config as string | undefined) ?? env.FUSION_CONFIG)
  const options: Raw = { ...fromConfig }
  for (const key of OPTION_NAMES) {
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
    // Own names only: a "__proto__" or "constructor" key is unknown, not an inherited property.
    const key = FLAG_TO_KEY.get(k) ?? (isOptionName(k) ? k : undefined)
    if (!key) throw new FusionError('BAD_OPTION', `--config ${file}: unknown key "${k}"`)
    out[key] = v
  }
  return out
}
