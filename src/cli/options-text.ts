import { OPTIONS, OPTION_GROUPS, OPTION_NAMES, type OptionGroup, type OptionName, type OptionSpec } from '../core/options.js'
import { CLI_FLAGS, type CliFlag } from './args.js'

// Everything a person reads about options is written from the schema here: `--help`, and
// the option tables of the docs (between <!-- options:begin ... --> and <!-- options:end -->,
// rewritten by `npm run docs:options` and checked by test/unit/cli/options-text.test.ts).

const WIDTH = 80
/** Glues a number to its unit while wrapping (`4 MiB` stays on one line); a space on output. */
const NBSP = '\u00a0'

/** `256 KiB`, `30 s`, `10 min`: a number in words when that says more than the digits. */
function inWords (n: number, unit: 'bytes' | 'ms' | 's' | undefined): string | undefined {
  if (unit === 'bytes') {
    for (const [size, name] of [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']] as const) {
      if (n >= size && n % size === 0) return `${n / size}${NBSP}${name}`
    }
    return undefined
  }
  if (unit === 'ms' || unit === 's') {
    const seconds = unit === 'ms' ? n / 1000 : n
    if (!Number.isInteger(seconds) || seconds === 0 || (unit === 's' && seconds < 60)) return undefined
    for (const [size, name] of [[86400, 'days'], [3600, 'h'], [60, 'min'], [1, 's']] as const) {
      if (seconds % size === 0) return `${seconds / size}${NBSP}${seconds === 86400 ? 'day' : name}`
    }
  }
  return undefined
}

/** A number with its words in parentheses: `262144 (256 KiB)`. */
function num (n: number, unit: 'bytes' | 'ms' | 's' | undefined, code: (s: string) => string): string {
  const words = inWords(n, unit)
  return words ? `${code(String(n))} (${words})` : code(String(n))
}

const plain = (s: string): string => s
const md = (s: string): string => `\`${s}\``

/** The default in words: `3000`, `262144 (256 KiB)`, `unset: auth off`. */
export function describeDefault (spec: OptionSpec): string {
  return defaultText(spec, plain).replaceAll(NBSP, ' ')
}

/** The values accepted: `0 to 65535`, `true or false`, `a redis:// URL`. */
export function describeRange (spec: OptionSpec): string {
  return rangeText(spec).replaceAll(NBSP, ' ')
}

/** The default, with NBSP between a number and its unit (for wrapping), numbers through `code`. */
function defaultText (spec: OptionSpec, code: (s: string) => string): string {
  if (spec.type === 'int') return num(spec.default, spec.unit, code)
  if (spec.type === 'string' && spec.shown !== undefined) return spec.shown
  if (spec.default === undefined) return `unset: ${'unset' in spec && spec.unset ? spec.unset : 'off'}`
  return code(String(spec.default))
}

function rangeText (spec: OptionSpec): string {
  if (spec.type === 'int') return `${num(spec.min, spec.unit, plain)} to ${num(spec.max, spec.unit, plain)}`
  if (spec.type === 'boolean') return 'arg' in spec ? 'true or false' : 'a switch'
  return spec.format ?? 'text'
}

/** `--http-port N`, `--memory`. */
function flagWithArg (flag: string, arg: string | undefined): string {
  return arg ? `--${flag} ${arg}` : `--${flag}`
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap (text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/[ \t\n]+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) { lines.push(line); line = word } else line = line ? `${line} ${word}` : word
  }
  if (line) lines.push(line)
  return lines
}

function helpEntry (head: string, text: string): string {
  const sentence = text.charAt(0).toUpperCase() + text.slice(1)
  return [`  ${head}`, ...wrap(sentence, WIDTH - 6).map((l) => `      ${l}`)].join('\n').replaceAll(NBSP, ' ')
}

function optionHelp (name: OptionName): string {
  const spec: OptionSpec = OPTIONS[name]
  const arg = 'arg' in spec ? spec.arg : undefined
  const value = spec.type === 'int'
    ? `Default ${defaultText(spec, plain)}; from ${rangeText(spec)}.`
    : spec.default === undefined ? `${defaultText(spec, plain).replace(/^u/, 'U')}.` : `Default ${defaultText(spec, plain)}.`
  return helpEntry(`${flagWithArg(spec.flag, arg)}  (${spec.env})`, `${spec.help}. ${value}`)
}

function cliHelp (f: CliFlag): string {
  const head = `${f.short ? `-${f.short}, ` : ''}${flagWithArg(f.flag, f.arg)}${f.env ? `  (${f.env})` : ''}`
  return helpEntry(head, `${f.help}.`)
}

/** The options of one group, in schema order. */
export function optionsOf (group: OptionGroup): OptionName[] {
  return OPTION_NAMES.filter((name) => OPTIONS[name].group === group)
}

/** The text of `mqtt-fusion --help`: every option, by group. */
export function usage (): string {
  const parts = [
    'Usage: mqtt-fusion [options]',
    '       mqtt-fusion user add|remove NAME --users FILE   (mqtt-fusion user --help)',
    '',
    wrap('Every option can also be set by the environment variable in parentheses, or as a key of the --config file (the flag, or the name in camelCase). The command line beats the environment, which beats the file.', WIDTH).join('\n')
  ]
  for (const group of OPTION_GROUPS) {
    parts.push('', `${group.title}:`, ...optionsOf(group.id).map(optionHelp))
  }
  parts.push('', 'Command line:', ...CLI_FLAGS.map(cliHelp))
  parts.push('', ...wrap('Signals: SIGINT/SIGTERM stop (WebSocket clients get 1001); SIGHUP rereads --users and --acl.', WIDTH))
  return parts.join('\n')
}

// ---- the docs' tables

/** The columns a table may have, with their header. */
const COLUMNS = { option: 'option', env: 'env', default: 'default', range: 'range', help: 'what', stops: 'stops' } as const
type Column = keyof typeof COLUMNS

/** A block's parameters: `groups=doors,limits` (or `*`), `select=contract|extensions|stops`, `columns=...`, `split`, `cli`. */
interface BlockParams {
  readonly groups: readonly OptionGroup[]
  readonly select: 'all' | 'contract' | 'extensions' | 'stops'
  readonly columns: readonly Column[]
  /** One table per group, each under its title. */
  readonly split: boolean
  /** The command's own flags (--config) too, as a last table or rows. */
  readonly cli: boolean
}

const BEGIN = /<!-- options:begin([^>]*?)-->\n/g
const END = '<!-- options:end -->'

function parseParams (raw: string): BlockParams {
  const p: { groups: OptionGroup[], select: BlockParams['select'], columns: Column[], split: boolean, cli: boolean } = {
    groups: OPTION_GROUPS.map((g) => g.id), select: 'all', columns: ['option', 'env', 'default', 'help'], split: false, cli: false
  }
  for (const token of raw.trim().split(/\s+/).filter(Boolean)) {
    const [key, value = ''] = token.split('=') as [string, string?]
    const list = value.split(',').filter(Boolean)
    if (key === 'split') p.split = true
    else if (key === 'cli') p.cli = true
    else if (key === 'groups' && value !== '*') {
      const known = OPTION_GROUPS.map((g) => g.id as string)
      for (const g of list) if (!known.includes(g)) throw new Error(`options block: unknown group "${g}" (known: ${known.join(', ')})`)
      p.groups = list as OptionGroup[]
    } else if (key === 'select' && ['all', 'contract', 'extensions', 'stops'].includes(value)) p.select = value as BlockParams['select']
    else if (key === 'columns') {
      for (const c of list) if (!(c in COLUMNS)) throw new Error(`options block: unknown column "${c}" (known: ${Object.keys(COLUMNS).join(', ')})`)
      p.columns = list as Column[]
    } else if (key !== 'groups') throw new Error(`options block: cannot read "${token}"`)
  }
  return p
}

/** A table cell: one line, no column break. */
function cell (s: string): string {
  return s.replaceAll(NBSP, ' ').replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim()
}

function optionCell (name: OptionName, column: Column): string {
  const spec: OptionSpec = OPTIONS[name]
  switch (column) {
    case 'option': return md(flagWithArg(spec.flag, 'arg' in spec ? spec.arg : undefined))
    case 'env': return md(spec.env)
    case 'default': return defaultText(spec, md)
    case 'range': return rangeText(spec)
    case 'help': return spec.help
    case 'stops': return spec.stops ?? ''
  }
}

function cliCell (f: CliFlag, column: Column): string {
  switch (column) {
    case 'option': return md(`${f.short ? `-${f.short}, ` : ''}${flagWithArg(f.flag, f.arg)}`)
    case 'env': return f.env ? md(f.env) : ''
    case 'default': return ''
    case 'range': return ''
    case 'help': return f.help
    case 'stops': return ''
  }
}

function table (columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`
  return [line(columns.map((c) => COLUMNS[c])), line(columns.map(() => '---')), ...rows.map(line)].join('\n')
}

function selected (name: OptionName, select: BlockParams['select']): boolean {
  const spec: OptionSpec = OPTIONS[name]
  if (select === 'contract') return spec.contract === true
  if (select === 'extensions') return spec.contract !== true
  if (select === 'stops') return spec.stops !== undefined
  return true
}

/** The Markdown a block holds, from its parameters. */
export function renderBlock (rawParams: string): string {
  const p = parseParams(rawParams)
  const names = (group: OptionGroup): OptionName[] => optionsOf(group).filter((n) => selected(n, p.select))
  const rowsOf = (list: readonly OptionName[]): string[][] => list.map((n) => p.columns.map((c) => optionCell(n, c)))
  // Only the command's flags with a value belong in a table of options (--config, not --help).
  const cliRows = CLI_FLAGS.filter((f) => f.arg).map((f) => p.columns.map((c) => cliCell(f, c)))
  const out: string[] = []
  if (p.split) {
    for (const group of OPTION_GROUPS.filter((g) => p.groups.includes(g.id))) {
      const list = names(group.id)
      if (list.length) out.push(`**${group.title}**`, '', table(p.columns, rowsOf(list)), '')
    }
    if (p.cli) out.push('**Command line**', '', table(p.columns, cliRows), '')
  } else {
    const list = OPTION_GROUPS.filter((g) => p.groups.includes(g.id)).flatMap((g) => names(g.id))
    out.push(table(p.columns, [...rowsOf(list), ...(p.cli ? cliRows : [])]), '')
  }
  return out.join('\n')
}

/**
 * `text` with every options block rewritten from the schema. A text without blocks comes
 * back as it was; a block without its end is an error (rather than eating the rest).
 */
export function renderOptionBlocks (text: string): string {
  let out = ''
  let at = 0
  for (const m of text.matchAll(BEGIN)) {
    if (m.index < at) throw new Error('options block: a begin marker inside another block')
    const bodyStart = m.index + m[0].length
    const end = text.indexOf(END, bodyStart)
    if (end < 0) throw new Error(`options block without ${END}`)
    out += text.slice(at, bodyStart) + renderBlock(m[1] ?? '')
    at = end
  }
  return out + text.slice(at)
}

/** How many options blocks `text` has. */
export function countOptionBlocks (text: string): number {
  return [...text.matchAll(BEGIN)].length
}

/** The files, relative to the project root, whose option tables come from the schema. */
export const DOCS_WITH_OPTIONS: readonly string[] = Object.freeze(['README.md', 'docs/PROTOCOL.md', 'docs/SECURITY.md'])
