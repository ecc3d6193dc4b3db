// What people read about options comes from the schema: `--help` lists every option by
// group, and the option tables committed in README.md, docs/PROTOCOL.md and docs/SECURITY.md
// are exactly what `npm run docs:options` writes (as errors.test.ts keeps docs/errors.md).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { DEFAULTS, OPTION_GROUPS, OPTION_NAMES, OPTIONS, type OptionName, type OptionSpec } from '../../../src/core/options.js'
import { CLI_FLAGS, parseCli } from '../../../src/cli/args.js'
import { DOCS_WITH_OPTIONS, countOptionBlocks, describeDefault, renderBlock, renderOptionBlocks, usage } from '../../../src/cli/options-text.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const spec = (name: OptionName): OptionSpec => OPTIONS[name]
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8')

/** The text between the options markers of `text`. */
function blocks (text: string): string {
  return [...text.matchAll(/<!-- options:begin[^>]*-->\n([\s\S]*?)<!-- options:end -->/g)].map((m) => m[1]).join('\n')
}

t.test('--help lists every option, its variable and its default, under its group, in schema order', async (t) => {
  const help = usage()
  let at = 0
  for (const group of OPTION_GROUPS) {
    const title = help.indexOf(`\n${group.title}:\n`)
    t.ok(title > at, `group "${group.title}" in order`)
    at = title
    for (const name of OPTION_NAMES.filter((n) => OPTIONS[n].group === group.id)) {
      const o = OPTIONS[name]
      const line = new RegExp(`^ {2}--${o.flag}( [A-Z]+)? {2}\\(${o.env}\\)$`, 'm').exec(help.slice(at))
      t.ok(line, `--${o.flag} (${o.env}) under ${group.title}`)
      if (line) at += line.index
    }
  }
  for (const f of CLI_FLAGS) t.match(help, `--${f.flag}`, `--${f.flag}`)
  t.match(help, /^Usage: mqtt-fusion \[options\]/)
  const flat = help.replace(/\n +/g, ' ')
  t.match(flat, 'Default 262144 (256 KiB); from 1 to 67108864 (64 MiB).', 'a number with its range, in words')
  t.match(flat, 'Unset: auth off.', 'an option without a default says what happens')
  for (const line of help.split('\n')) t.ok(line.length <= 80, `at most 80 columns: ${line.slice(0, 40)}`)
  t.equal(help.split('\n').filter((l) => /^ {2}-/.test(l)).length, OPTION_NAMES.length + CLI_FLAGS.length, 'one entry per option and flag')
})

t.test('every flag --help shows is one the command line takes', async (t) => {
  for (const m of usage().matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)( [A-Z]+)?/gm)) {
    const args = m[2] ? [m[1] as string, '1'] : [m[1] as string]
    let error = ''
    try { parseCli(args, {}) } catch (err) { error = (err as Error).message }
    // --config 1 gets as far as reading the file "1": the flag itself was taken.
    t.notMatch(error, /unknown option|argument missing/i, `${args.join(' ')} is taken`)
  }
})

t.test('defaults in words', async (t) => {
  t.equal(describeDefault(OPTIONS.maxPayload), '262144 (256 KiB)')
  t.equal(describeDefault(OPTIONS.historyMaxAgeMs), '2592000000 (30 days)')
  t.equal(describeDefault(OPTIONS.tokenTtlS), '600 (10 min)')
  t.equal(describeDefault(OPTIONS.heartbeatMs), '30000 (30 s)')
  t.equal(describeDefault(OPTIONS.httpPort), '3000')
  t.equal(describeDefault(OPTIONS.redis), 'unset: a single node')
  t.equal(describeDefault(OPTIONS.serverName), 'mqtt-fusion/VERSION (package.json)', 'stable across versions')
})

for (const file of DOCS_WITH_OPTIONS) {
  t.test(`${file}: its option tables are what the schema gives (else: npm run docs:options)`, async (t) => {
    const text = read(file)
    t.ok(countOptionBlocks(text) >= 1, 'has an options block')
    t.equal(renderOptionBlocks(text), text, 'up to date')
  })
}

t.test('README.md lists every option and --config', async (t) => {
  const tables = blocks(read('README.md'))
  for (const name of OPTION_NAMES) t.match(tables, `| \`--${OPTIONS[name].flag}`, `--${OPTIONS[name].flag}`)
  t.match(tables, '`--config FILE` | `FUSION_CONFIG`')
})

t.test('docs/SECURITY.md lists every option that says what it stops', async (t) => {
  const tables = blocks(read('docs/SECURITY.md'))
  for (const name of OPTION_NAMES) {
    const o = spec(name)
    if (o.stops !== undefined) t.match(tables, `| \`--${o.flag}`, `--${o.flag}`)
  }
})

/** Rows of the contract's `| option | env | default |` table in the Command line section. */
function contractRows (text: string): Array<{ flag: string, env: string, def: string }> {
  const start = text.indexOf('\n## Command line\n')
  const end = text.indexOf('\n## ', start + 1)
  const section = text.slice(start, end < 0 ? undefined : end)
  return [...section.matchAll(/^\| `--([a-z-]+)` \| `([A-Z_]+)(?:=1)?` \| (.*) \|$/gm)].map((m) => ({ flag: m[1] as string, env: m[2] as string, def: m[3] as string }))
}

// Our copy of the contract and the shared original beside the project, where present. The
// contract's table is not ours to rewrite, so it is checked instead.
const protocols = [join(ROOT, 'docs', 'PROTOCOL.md'), join(ROOT, '..', 'shared', 'PROTOCOL.md')].filter((p) => existsSync(p))
for (const protocol of protocols) {
  t.test(`${protocol}: the contract's option table agrees with the schema`, async (t) => {
    const rows = contractRows(readFileSync(protocol, 'utf8'))
    t.ok(rows.length >= 7, `the table parses (${rows.length} rows)`)
    const byFlag = new Map<string, OptionName>(OPTION_NAMES.map((n) => [OPTIONS[n].flag, n]))
    for (const row of rows) {
      const name = byFlag.get(row.flag)
      const cli = CLI_FLAGS.find((f) => f.flag === row.flag)
      t.ok(name ?? cli, `--${row.flag} exists`)
      if (cli) { t.equal(row.env, cli.env, `--${row.flag}: variable`); continue }
      if (!name) continue
      const o = spec(name)
      t.equal(o.contract, true, `--${row.flag} is marked contract`)
      t.equal(row.env, o.env, `--${row.flag}: variable`)
      const def = DEFAULTS[name]
      if (def === undefined || def === false) t.match(row.def, /^(off|none)\b/, `--${row.flag}: off by default`)
      else t.ok(row.def.startsWith(`\`${String(def)}\``), `--${row.flag}: default ${String(def)} (${row.def})`)
    }
    for (const name of OPTION_NAMES) {
      if (spec(name).contract) t.ok(rows.some((r) => r.flag === OPTIONS[name].flag), `contract option --${OPTIONS[name].flag} has a row`)
    }
  })
}

t.test('docs/PROTOCOL.md: the contract table and the additions together list every option', async (t) => {
  const text = read('docs/PROTOCOL.md')
  const listed = new Set([...contractRows(text).map((r) => r.flag), ...[...blocks(text).matchAll(/^\| `--([a-z-]+)/gm)].map((m) => m[1])])
  for (const name of OPTION_NAMES) t.ok(listed.has(OPTIONS[name].flag), `--${OPTIONS[name].flag}`)
})

t.test('every FUSION_ variable that a document, example or deploy file names is one the command reads', async (t) => {
  const known = new Set([...OPTION_NAMES.map((n) => OPTIONS[n].env), ...CLI_FLAGS.flatMap((f) => (f.env ? [f.env] : []))])
  const files = ['README.md', 'Dockerfile', ...readdirSync(ROOT).filter((f) => /^docker-compose.*\.ya?ml$/.test(f))]
  for (const dir of ['docs', 'deploy', 'examples']) {
    if (!existsSync(join(ROOT, dir))) continue
    for (const f of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if (/\.(md|ya?ml|cfg|conf|sh|mjs|js|ts|ino|py|json|env)$/.test(f)) files.push(join(dir, f))
    }
  }
  let seen = 0
  for (const file of files.filter((f) => existsSync(join(ROOT, f)))) {
    for (const m of read(file).matchAll(/\bFUSION_[A-Z0-9_]+/g)) {
      seen++
      t.ok(known.has(m[0]), `${file}: ${m[0]} is an option's variable`)
    }
  }
  t.ok(seen > 10, `${seen} mentions checked`)
})

t.test('blocks: parameters are checked, a missing end marker is an error, other text is kept', async (t) => {
  t.equal(renderOptionBlocks('no blocks here\n'), 'no blocks here\n')
  t.throws(() => renderOptionBlocks('<!-- options:begin -->\nno end'), /options:end/)
  t.throws(() => renderBlock(' groups=nowhere '), /unknown group "nowhere"/)
  t.throws(() => renderBlock(' columns=option,colour '), /unknown column "colour"/)
  t.throws(() => renderBlock(' sideways '), /cannot read "sideways"/)
  const text = 'before\n<!-- options:begin groups=doors columns=option,default -->\nstale\n<!-- options:end -->\nafter\n'
  const out = renderOptionBlocks(text)
  t.match(out, /^before\n<!-- options:begin groups=doors columns=option,default -->\n\| option \| default \|\n/)
  t.match(out, '| `--http-port N` | `3000` |')
  t.notMatch(out, 'stale')
  t.notMatch(out, '--max-payload', 'only the groups asked for')
  t.match(out, /<!-- options:end -->\nafter\n$/)
  t.equal(renderOptionBlocks(out), out, 'rendering twice changes nothing')
})
