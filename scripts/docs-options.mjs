// Rewrites the option tables of the docs from the options schema (src/core/options-schema.ts),
// between <!-- options:begin ... --> and <!-- options:end -->. `--check` writes nothing and
// exits 1 when a file differs (test/unit/cli/options-text.test.ts checks the same).
// Run through `npm run docs:options`, which builds dist/ first.
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DOCS_WITH_OPTIONS, renderOptionBlocks } from '../dist/cli/options-text.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const check = process.argv.includes('--check')
let stale = 0
for (const file of DOCS_WITH_OPTIONS) {
  const path = join(root, file)
  const text = readFileSync(path, 'utf8')
  const next = renderOptionBlocks(text)
  if (next === text) { console.log(`${file}: up to date`); continue }
  stale++
  if (check) console.log(`${file}: differs from the schema (run npm run docs:options)`)
  else { writeFileSync(path, next); console.log(`${file}: rewritten`) }
}
if (check && stale) process.exitCode = 1
