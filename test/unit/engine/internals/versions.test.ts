// The version check of src/engine/internals/versions.ts: the gateway refuses to start on
// a library version its patches were not written for, in one line, unless told to.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { checkLibraryVersions, installedLibraries, libraryMismatches, PATCHES, WRITTEN_FOR, type Installed, type LibraryName } from '../../../../src/engine/internals/index.js'
import { FusionError } from '../../../../src/core/errors.js'
import { resolveOptions } from '../../../../src/core/options.js'
import { parseCli } from '../../../../src/cli/args.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..')

const exact: Installed = { versions: { ...WRITTEN_FOR }, sameMqttPacket: true }
const with_ = (name: LibraryName, version: string | undefined): Installed => ({ versions: { ...WRITTEN_FOR, [name]: version }, sameMqttPacket: true })

t.test('what is installed here is what the patches were written for', async (t) => {
  const installed = installedLibraries()
  t.same(installed.versions, WRITTEN_FOR, 'every library at its written-for version')
  t.equal(installed.sameMqttPacket, true, 'Aedes loads the mqtt-packet the PUBACK gate patches')
  t.same(libraryMismatches(installed), [])
  t.doesNotThrow(() => checkLibraryVersions({ allowUntested: false, log: () => {} }))
})

t.test('package.json pins the direct dependencies at exactly those versions', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>, devDependencies: Record<string, string> }
  for (const [name, version] of Object.entries(WRITTEN_FOR)) {
    if (name === 'aedes-persistence') continue // comes with aedes (and the persistences), not ours to pin
    t.equal(pkg.dependencies[name], version, `${name} is a dependency pinned at ${version}`)
  }
  t.notOk(pkg.devDependencies['mqtt-packet'], 'mqtt-packet is no longer only a devDependency')
})

t.test('a different version refuses to start with one line naming it', async (t) => {
  let err: unknown
  try { checkLibraryVersions({ allowUntested: false, log: () => {}, installed: with_('aedes', '1.3.0') }) } catch (e) { err = e }
  t.ok(err instanceof FusionError, 'a FusionError')
  const e = err as FusionError
  t.equal(e.code, 'UNTESTED_LIBRARY')
  t.notMatch(e.message, /\n/, 'one line')
  t.match(e.message, /aedes 1\.3\.0 \(written for 1\.2\.0\)/)
  t.match(e.message, /--allow-untested-libs/, 'says how to start anyway')
  t.throws(() => checkLibraryVersions({ allowUntested: false, log: () => {}, installed: with_('ws', undefined) }), { code: 'UNTESTED_LIBRARY', message: /ws not found/ })
  t.throws(() => checkLibraryVersions({ allowUntested: false, log: () => {}, installed: { ...exact, sameMqttPacket: false } }), { code: 'UNTESTED_LIBRARY', message: /another copy of mqtt-packet/ })
  for (const name of Object.keys(WRITTEN_FOR) as LibraryName[]) {
    t.throws(() => checkLibraryVersions({ allowUntested: false, log: () => {}, installed: with_(name, '0.0.1') }), { code: 'UNTESTED_LIBRARY' }, `${name} is checked`)
  }
})

t.test('--allow-untested-libs starts anyway, with a warning', async (t) => {
  const logged: Array<[string, string]> = []
  t.doesNotThrow(() => checkLibraryVersions({ allowUntested: true, log: (level, msg) => { logged.push([level, msg]) }, installed: with_('mqtt-packet', '9.1.0') }))
  t.equal(logged.length, 1)
  t.equal(logged[0]?.[0], 'warn')
  t.match(logged[0]?.[1] ?? '', /mqtt-packet 9\.1\.0 \(written for 9\.0\.2\).*--allow-untested-libs/)
  const quiet: unknown[] = []
  checkLibraryVersions({ allowUntested: true, log: (...a) => { quiet.push(a) }, installed: exact })
  t.same(quiet, [], 'no warning when nothing differs')
})

t.test('the option: off by default, a switch on the command line, a boolean in the environment', async (t) => {
  t.equal(resolveOptions({}).allowUntestedLibs, false)
  t.equal(resolveOptions(parseCli(['--allow-untested-libs'], {}).options).allowUntestedLibs, true)
  t.equal(resolveOptions(parseCli([], { FUSION_ALLOW_UNTESTED_LIBS: '1' }).options).allowUntestedLibs, true)
  t.throws(() => resolveOptions({ allowUntestedLibs: 'maybe' }), { code: 'BAD_OPTION' })
})

t.test('the patch table names only checked libraries and existing modules', async (t) => {
  const ids = PATCHES.map((p) => p.id)
  t.same(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'ids are unique')
  const table = readFileSync(join(ROOT, 'src', 'engine', 'internals', 'index.ts'), 'utf8')
  for (const p of PATCHES) {
    t.ok(p.libraries.length > 0, `${p.id}: names its libraries`)
    for (const lib of p.libraries) t.ok(lib in WRITTEN_FOR, `${p.id}: ${lib} has a written-for version`)
    t.match(table, new RegExp(`^ \\* \\| ${p.id} \\|`, 'm'), `${p.id}: a row of the table at the top of index.ts`)
    for (const file of p.usedBy) {
      const text = readFileSync(join(ROOT, 'src', file), 'utf8')
      t.match(text, /internals\/index\.js'/, `${p.id}: ${file} goes through the internals room`)
    }
  }
})
