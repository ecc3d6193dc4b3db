import { FusionError } from './errors.js'
import { OPTIONS, OPTION_NAMES, isOptionName, optionSpec, type GatewayOptions, type OptionName } from './options-schema.js'

// Options are declared once, in options-schema.ts; this module checks values against it.
export { OPTIONS, OPTION_GROUPS, OPTION_NAMES, isOptionName, type GatewayOptions, type OptionName, type OptionSpec, type OptionGroup } from './options-schema.js'

/** Every option at its default (frozen). */
export const DEFAULTS: Readonly<GatewayOptions> = Object.freeze(
  Object.fromEntries(OPTION_NAMES.map((name) => [name, OPTIONS[name].default]))
) as unknown as Readonly<GatewayOptions>

/** Option names as the command line spells them, for error messages. */
export const OPTION_FLAGS: Readonly<Record<OptionName, string>> = Object.freeze(
  Object.fromEntries(OPTION_NAMES.map((name) => [name, OPTIONS[name].flag]))
) as Readonly<Record<OptionName, string>>

/**
 * Checks one value against its entry; returns the value to keep, or the problem as a
 * sentence that names the flag (these sentences are part of the command line's behaviour).
 */
function check (name: OptionName, value: unknown): { value: unknown } | { problem: string } {
  const spec = optionSpec(name)
  const flag = `--${spec.flag}`
  switch (spec.type) {
    case 'int': {
      // Text from the command line or the environment: digits only (no 1e3, 0x50, 1.5).
      const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value
      if (typeof n !== 'number' || !Number.isInteger(n) || n < spec.min || n > spec.max) {
        return { problem: `${flag} must be a whole number from ${spec.min} to ${spec.max} (got ${JSON.stringify(value)})` }
      }
      return { value: n }
    }
    case 'boolean':
      if (typeof value === 'boolean') return { value }
      if (value === '1' || value === 'true' || value === '') return { value: true }
      if (value === '0' || value === 'false') return { value: false }
      return { problem: `${flag} must be true or false (got ${JSON.stringify(value)})` }
    case 'string':
      if (typeof value !== 'string' || value.length === 0) return { problem: `${flag} must be a non-empty string (got ${JSON.stringify(value)})` }
      if (spec.pattern && !spec.pattern.test(value)) return { problem: `${flag} must be ${spec.format ?? `like ${String(spec.pattern)}`} (got ${JSON.stringify(value)})` }
      return { value }
  }
}

/**
 * Checks options against the schema, reporting every problem in one error, and returns
 * a frozen copy: nobody downstream can change what was decided here.
 */
export function resolveOptions (input: Partial<Record<OptionName, unknown>> = {}): Readonly<GatewayOptions> {
  const problems: string[] = []
  const out: Record<string, unknown> = { ...DEFAULTS }
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue
    if (!isOptionName(key)) {
      problems.push(`unknown option "${key}"`)
      continue
    }
    const r = check(key, value)
    if ('problem' in r) problems.push(r.problem)
    else out[key] = r.value
  }
  // Rules between options (the schema holds one option per entry).
  if ((out.tlsCert === undefined) !== (out.tlsKey === undefined)) problems.push('--tls-cert and --tls-key go together')
  if (problems.length) throw new FusionError('BAD_OPTION', problems.join('; '))
  // A bigger --max-payload must fit through the MQTT doors too: unless told otherwise,
  // the packet limit follows it, with room for the longest topic and the headers.
  if (input.maxPacket === undefined) {
    out.maxPacket = Math.max(DEFAULTS.maxPacket, (out.maxPayload as number) + (out.maxTopicLength as number) + 64)
  }
  return Object.freeze(out) as unknown as Readonly<GatewayOptions>
}
