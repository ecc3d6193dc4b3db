// The options schema (src/core/options-schema.ts) is the only place options are declared:
// every entry is complete and consistent, and what is derived from it (the type, DEFAULTS,
// the checks, the flags and variables) follows it. Adding an option is one entry; these
// tests say what the entry must hold.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { FusionError } from '../../../src/core/errors.js'
import { DEFAULTS, OPTION_FLAGS, OPTION_GROUPS, OPTION_NAMES, OPTIONS, resolveOptions, type GatewayOptions, type OptionName, type OptionSpec } from '../../../src/core/options.js'
import { isOptionName } from '../../../src/core/options-schema.js'
import { NAME, VERSION } from '../../../src/core/version.js'
import { envName, parseCli } from '../../../src/cli/args.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

// Compile time (npm run typecheck): the derived type has the shapes the code relies on.
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false
const typeChecks: [
  Equal<GatewayOptions['httpPort'], number>,
  Equal<GatewayOptions['memory'], boolean>,
  Equal<GatewayOptions['host'], string>,
  Equal<GatewayOptions['redis'], string | undefined>,
  Equal<Pick<GatewayOptions, 'redis'>, { redis?: string | undefined }>,
  Equal<keyof GatewayOptions, OptionName>
] = [true, true, true, true, true, true]
void typeChecks

const spec = (name: OptionName): OptionSpec => OPTIONS[name]
const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

function badOption (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (err instanceof FusionError && err.code === 'BAD_OPTION') return err.message
    throw err
  }
  throw new Error('expected a BAD_OPTION error')
}

/** Names the contract (PROTOCOL.md) fixed; they never change. */
const CONTRACT = { host: 'FUSION_HOST', httpPort: 'FUSION_HTTP_PORT', mqttPort: 'FUSION_MQTT_PORT', dataDir: 'FUSION_DATA_DIR', memory: 'FUSION_MEMORY', redis: 'FUSION_REDIS_URL' }

t.test('every option has a type, a default, a flag, a variable, a group and help', async (t) => {
  t.ok(OPTION_NAMES.length >= 32, `${OPTION_NAMES.length} options`)
  const groups = OPTION_GROUPS.map((g) => g.id as string)
  for (const name of OPTION_NAMES) {
    const o = spec(name)
    t.ok(['int', 'boolean', 'string'].includes(o.type), `${name}: a type`)
    t.ok('default' in o, `${name}: a default (possibly undefined)`)
    t.equal(o.flag, kebab(name), `${name}: the flag is the name in kebab case`)
    const env = name in CONTRACT ? CONTRACT[name as keyof typeof CONTRACT] : `FUSION_${o.flag.toUpperCase().replace(/-/g, '_')}`
    t.equal(o.env, env, `${name}: the variable is ${env}`)
    t.ok(groups.includes(o.group), `${name}: group ${o.group} is listed in OPTION_GROUPS`)
    t.match(o.help, /^[^\s.].{9,}[^.\s]$/s, `${name}: help is a phrase without a final period`)
    t.notMatch(o.help, /[`\n|]/, `${name}: help is one line of plain text (it goes to --help too)`)
    if (o.stops !== undefined) t.notMatch(o.stops, /\n|\|/, `${name}: stops fits in a table cell`)
    t.equal(o.contract === true, name in CONTRACT, `${name}: marked contract exactly when the contract names it`)
  }
})

t.test('flags and variables are unique, and never those of the command itself', async (t) => {
  const flags = OPTION_NAMES.map((n) => spec(n).flag)
  const envs = OPTION_NAMES.map((n) => spec(n).env)
  t.equal(new Set(flags).size, flags.length, 'flags are unique')
  t.equal(new Set(envs).size, envs.length, 'variables are unique')
  for (const own of ['config', 'help', 'version']) t.notOk(flags.includes(own), `--${own} is the command's`)
  t.notOk(envs.includes('FUSION_CONFIG'))
})

t.test('numbers: whole, finite ranges that hold the default', async (t) => {
  for (const name of OPTION_NAMES) {
    const o = spec(name)
    if (o.type !== 'int') continue
    t.ok(Number.isSafeInteger(o.min) && Number.isSafeInteger(o.max), `${name}: whole bounds`)
    t.ok(o.min <= o.default && o.default <= o.max, `${name}: ${o.min} <= ${o.default} <= ${o.max}`)
    t.equal(resolveOptions({ [name]: o.min })[name], o.min, `${name}: the lower bound is accepted`)
    t.equal(resolveOptions({ [name]: String(o.max) })[name], o.max, `${name}: the upper bound is accepted, as text too`)
    t.equal(badOption(() => resolveOptions({ [name]: o.min - 1 })), `--${o.flag} must be a whole number from ${o.min} to ${o.max} (got ${o.min - 1})`)
    t.match(badOption(() => resolveOptions({ [name]: o.max + 1 })), `--${o.flag} must be a whole number`)
  }
})

t.test('booleans: one that is on by default takes a value, or it could never be turned off', async (t) => {
  for (const name of OPTION_NAMES) {
    const o = spec(name)
    if (o.type !== 'boolean') continue
    if (o.default) t.ok('arg' in o, `${name}: --${o.flag} takes a value`)
    const cli = parseCli('arg' in o ? [`--${o.flag}`, 'false'] : [`--${o.flag}`], {}).options
    t.equal(resolveOptions(cli)[name], !('arg' in o), `${name}: the flag works as --help says`)
  }
})

t.test('strings: an unset option says what happens then; a pattern says what it wants', async (t) => {
  for (const name of OPTION_NAMES) {
    const o = spec(name)
    if (o.type !== 'string') continue
    if (o.default === undefined) t.ok(o.unset && o.unset.length > 3, `${name}: says what happens when unset`)
    else t.equal(o.unset, undefined, `${name}: has a default, so no unset text`)
    if (o.pattern) {
      t.ok(o.format, `${name}: a pattern comes with its format in words`)
      t.equal(badOption(() => resolveOptions({ [name]: 'nonsense' })), `--${o.flag} must be ${o.format} (got "nonsense")`)
    }
  }
})

t.test('limits say what they stop', async (t) => {
  for (const name of OPTION_NAMES) {
    if (spec(name).group === 'limits') t.ok(spec(name).stops, `${name}: a limit says what it stops (docs/SECURITY.md)`)
  }
})

t.test('DEFAULTS, OPTION_FLAGS and the variables are the schema', async (t) => {
  t.same(Object.keys(DEFAULTS), OPTION_NAMES, 'DEFAULTS has every option, in schema order')
  for (const name of OPTION_NAMES) {
    t.equal(DEFAULTS[name], spec(name).default, `${name}: default`)
    t.equal(OPTION_FLAGS[name], spec(name).flag, `${name}: flag`)
    t.equal(envName(name), spec(name).env, `${name}: variable`)
  }
  t.ok(Object.isFrozen(DEFAULTS) && Object.isFrozen(OPTION_FLAGS) && Object.isFrozen(OPTION_NAMES))
  t.same(resolveOptions(), DEFAULTS, 'nothing given: the defaults')
  const given = Object.fromEntries(OPTION_NAMES.filter((n) => DEFAULTS[n] !== undefined).map((n) => [n, DEFAULTS[n]]))
  t.same(resolveOptions(given), DEFAULTS, 'every default passes its own check')
})

t.test('only own names are options: nothing reaches Object.prototype', async (t) => {
  for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    t.notOk(isOptionName(key), `${key} is not an option`)
    t.match(badOption(() => resolveOptions(JSON.parse(`{"${key}": "x"}`))), `unknown option "${key}"`)
  }
})

t.test('the version comes from package.json, and the server name with it', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string, version: string }
  t.equal(VERSION, pkg.version)
  t.equal(NAME, pkg.name)
  t.equal(DEFAULTS.serverName, `${pkg.name}/${pkg.version}`)
})
