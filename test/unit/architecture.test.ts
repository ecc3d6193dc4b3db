// The layout docs/ARCHITECTURE.md describes is the layout src/ has: its module table
// names every file under src/ and nothing else, and imports point from doors to engine
// to core, never back.
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function walk (dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

const files = walk(join(ROOT, 'src')).map((p) => relative(ROOT, p).split('\\').join('/')).sort()

t.test('the module table of docs/ARCHITECTURE.md names every module under src/', async (t) => {
  const doc = readFileSync(join(ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8')
  const table = doc.slice(doc.indexOf('<!-- modules:begin'), doc.indexOf('<!-- modules:end'))
  const named = [...table.matchAll(/^\| `(src\/[^`]+)` \|/gm)].map((m) => m[1] as string).sort()
  t.same(files.filter((f) => !named.includes(f)), [], 'modules missing from the table')
  t.same(named.filter((f) => !files.includes(f)), [], 'rows naming no module')
})

const ROOMS = ['core', 'engine', 'doors'] as const
const roomOf = (file: string): string | undefined => ROOMS.find((r) => file.startsWith(`src/${r}/`))
// What each room may import: arrows point from doors to engine to core, never back.
const MAY_IMPORT: Record<string, readonly string[]> = { core: ['core'], engine: ['engine', 'core'], doors: ['doors', 'engine', 'core'] }

t.test('imports point from doors to engine to core, never back', async (t) => {
  const wrong: string[] = []
  for (const file of files.filter((f) => f.endsWith('.ts'))) {
    const room = roomOf(file)
    if (!room) continue
    const text = readFileSync(join(ROOT, file), 'utf8')
    for (const m of text.matchAll(/from '(\.[^']+)'/g)) {
      const target = relative(ROOT, resolve(dirname(join(ROOT, file)), m[1] as string)).split('\\').join('/')
      const to = roomOf(target) ?? (target.startsWith('src/') ? 'root' : 'outside')
      if (to === 'root' || !(MAY_IMPORT[room] as readonly string[]).includes(to)) wrong.push(`${file} -> ${target}`)
    }
  }
  t.same(wrong, [])
})
