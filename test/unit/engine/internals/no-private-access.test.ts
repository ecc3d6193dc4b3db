// Only src/engine/internals/ touches a library's private parts: every other module under
// src/ calls the named functions it exports. A grep over the code (comments removed).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'src')
const ROOM = join(SRC, 'engine', 'internals') + sep

/** What reaching into a library looks like, each with why it is caught. */
const FORBIDDEN: ReadonlyArray<{ name: string, re: RegExp }> = [
  { name: 'a member whose name starts with _ (ws `_socket`, Aedes `_will`, `_disconnected`, `_parser`, mqemitter `_close`, a stream `_write`)', re: /\.\s*_[A-Za-z]\w*|\[\s*['"`]_[A-Za-z]\w*['"`]\s*\]/ },
  { name: 'a property declared with a private name (`{ _socket?: ... }` in a cast)', re: /[{;]\s*_[A-Za-z]\w*\??\s*:/ },
  { name: "Aedes's client internals", re: /\b(deliver0|deliverQoS|connackSent|duplicates|_parser)\b/ },
  { name: 'a persistence method replaced or wrapped', re: /\b(outgoingEnqueueCombi|storeRetained|createRetainedStreamCombi)\b/ },
  { name: "mqtt-packet's writeToStream", re: /\bwriteToStream\b/ },
  { name: "Aedes's broker internals (`persistence`, `clients`, `brokers`)", re: /broker\)?\s*\.\s*(persistence|clients|brokers)\b/ },
  { name: "Aedes's client internals (`subscriptions`, `will`)", re: /client\)?\s*\.\s*(subscriptions|will|duplicates)\b/ },
  { name: "a stream's read or write replaced", re: /\.\s*(read|write|_read|_write|_writev)\s*=(?!=)/ },
  { name: 'an import of mqtt-packet or of a persistence', re: /from\s+['"](mqtt-packet|aedes-persistence[\w/.-]*)['"]/ },
  { name: "aedes-persistence-level's key format", re: /['"`]retained:/ }
]

function walk (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...walk(path))
    else if (name.endsWith('.ts')) out.push(path)
  }
  return out
}

/** The code without comments: block comments, and `//` comments that start a line or follow a space. */
function code (text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|\s)\/\/.*$/gm, '$1')
}

function hits (text: string): string[] {
  const out: string[] = []
  code(text).split('\n').forEach((line, i) => {
    for (const f of FORBIDDEN) if (f.re.test(line)) out.push(`${i + 1}: ${f.name}: ${line.trim()}`)
  })
  return out
}

const files = walk(SRC)

t.test('no module outside src/engine/internals/ touches a private part', async (t) => {
  t.ok(files.length > 30, 'the walk found the sources')
  for (const file of files) {
    // The room itself, and type declarations for untyped libraries (they run nothing).
    if (file.startsWith(ROOM) || file.endsWith('.d.ts')) continue
    t.same(hits(readFileSync(file, 'utf8')), [], relative(SRC, file))
  }
})

t.test('the patterns catch what they are meant to (they can fail)', async (t) => {
  // The room itself does all of it: every pattern but the import one must hit there.
  const room = files.filter((f) => f.startsWith(ROOM)).map((f) => readFileSync(f, 'utf8')).join('\n')
  for (const f of FORBIDDEN) t.ok(code(room).split('\n').some((line) => f.re.test(line)), `${f.name}: found in the room`)
  // And the shapes the spread-out patches had before they moved in.
  const before = [
    "const socket = (ws as unknown as { _socket?: NodeJS.WritableStream | null })._socket",
    'const lib = mqttPacket as unknown as { writeToStream: WriteToStream }',
    'c.deliver0 = route(aedes0)',
    "sync.onSeen((id) => { broker.brokers[id] = Date.now() })",
    'const will = (client as unknown as { _will?: PublishPacket | null })._will',
    'stream.write = function boundedWrite (...args: unknown[]): boolean {',
    "import mqttPacket from 'mqtt-packet'",
    "for await (const key of db.keys({ gte: 'retained:', lt: 'retained;' })) trie.add(key)"
  ]
  for (const line of before) t.not(hits(line).length, 0, line)
  t.same(hits('// a comment about client._will and writeToStream\nconst x = 1 /* deliver0 */'), [], 'comments are not code')
})
