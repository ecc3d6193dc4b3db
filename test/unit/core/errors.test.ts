// The error catalogue (src/core/errors.ts) and its documentation (docs/errors.md) stay in step.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ERROR_CODES, FusionError, WS_CLOSE, isFusionError, type ErrorCode } from '../../../src/core/errors.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const DOC = join(ROOT, 'docs', 'errors.md')

/** The code a user sees in PROTOCOL.md's error table; these can never be renamed or dropped. */
const CONTRACT_CODES = ['BAD_JSON', 'BAD_FRAME', 'BAD_TOPIC', 'ACL_DENIED', 'TOO_LARGE', 'RATE_LIMITED', 'LIMIT_EXCEEDED', 'NOT_AUTHORIZED']

interface DocRow { code: string, status: number, close: number | undefined, when: string }

/** Rows of the `| code | HTTP status | WS close | when |` table. */
function docRows (text: string): DocRow[] {
  const rows: DocRow[] = []
  for (const line of text.split('\n')) {
    const m = /^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|\s*$/.exec(line)
    if (!m) continue
    const close = /^\d{4}$/.test(m[3] as string) ? Number(m[3]) : undefined
    rows.push({ code: m[1] as string, status: Number(m[2]), close, when: m[4] as string })
  }
  return rows
}

const doc = readFileSync(DOC, 'utf8')
const rows = docRows(doc)
const catalogue = Object.keys(ERROR_CODES) as ErrorCode[]

t.test('docs/errors.md has a row for every code in src/core/errors.ts, and nothing else', async (t) => {
  t.ok(rows.length > 0, 'the table parses')
  const documented = rows.map((r) => r.code)
  t.same(documented.filter((c, i) => documented.indexOf(c) !== i), [], 'no code documented twice')
  t.same(catalogue.filter((c) => !documented.includes(c)), [], 'codes missing from docs/errors.md')
  t.same(documented.filter((c) => !(c in ERROR_CODES)), [], 'documented codes missing from src/core/errors.ts')
})

t.test('each row states the same HTTP status and close code as the catalogue', async (t) => {
  for (const row of rows) {
    const info = ERROR_CODES[row.code as ErrorCode] as { status: number, close?: number } | undefined
    if (!info) continue
    t.equal(row.status, info.status, `${row.code}: HTTP status`)
    t.equal(row.close, info.close, `${row.code}: WS close`)
    t.ok(row.when.length > 10, `${row.code}: says when`)
  }
})

t.test('every code of the wire contract exists, with a sensible HTTP status', async (t) => {
  for (const code of CONTRACT_CODES) t.ok(code in ERROR_CODES, `${code} is in the catalogue`)
  for (const code of catalogue) {
    const { status } = ERROR_CODES[code]
    t.ok(status >= 400 && status <= 599, `${code}: ${status} is an error status`)
  }
  t.equal(ERROR_CODES.ACL_DENIED.status, 403)
  t.equal(ERROR_CODES.NOT_AUTHORIZED.status, 401)
  t.equal(ERROR_CODES.TOO_LARGE.status, 413)
  t.equal(ERROR_CODES.RATE_LIMITED.status, 429)
  t.equal(ERROR_CODES.NOT_AUTHORIZED.close, WS_CLOSE.POLICY, 'NOT_AUTHORIZED closes with 1008')
})

// Our copy (docs/PROTOCOL.md) and the shared original beside the project, where present.
const protocols = [process.env.FUSION_PROTOCOL, join(ROOT, 'docs', 'PROTOCOL.md'), join(ROOT, '..', 'shared', 'PROTOCOL.md')]
  .filter((p): p is string => p !== undefined && p !== '' && existsSync(p))
for (const protocol of protocols) t.test(`${protocol} names no code or close code we lack`, async (t) => {
  const text = readFileSync(protocol, 'utf8')
  const start = text.indexOf('### Errors and close codes')
  const end = text.indexOf('\n## ', start)
  const section = text.slice(start, end < 0 ? undefined : end)
  const codes = [...section.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1] as string)
  t.ok(codes.length >= CONTRACT_CODES.length, `PROTOCOL.md's table parses (${codes.length} codes)`)
  for (const code of codes) t.ok(code in ERROR_CODES, `${code} from PROTOCOL.md is in the catalogue`)
  for (const close of [...section.matchAll(/\b(1\d{3})\b/g)].map((m) => Number(m[1]))) {
    t.ok(Object.values(WS_CLOSE).includes(close as never), `close code ${close} from PROTOCOL.md has a name in WS_CLOSE`)
  }
})

t.test('every WS_CLOSE code is documented', async (t) => {
  for (const [name, code] of Object.entries(WS_CLOSE)) {
    t.match(doc, new RegExp(`\\|\\s*${code}\\s*\\|\\s*\`${name}\``), `${code} ${name} has a row`)
  }
})

t.test('FusionError carries its code, status and cause', async (t) => {
  const cause = new Error('disk full')
  const err = new FusionError('STORE_FAILED', 'the message could not be stored', { cause })
  t.ok(err instanceof Error)
  t.ok(isFusionError(err))
  t.equal(err.name, 'FusionError')
  t.equal(err.code, 'STORE_FAILED')
  t.equal(err.status, 503)
  t.equal(err.message, 'the message could not be stored')
  t.equal(err.cause, cause, 'the log keeps the cause')
  t.notOk(isFusionError(new Error('plain')))
  t.notOk(isFusionError({ code: 'BAD_JSON' }), 'a look-alike object is not one')
  for (const code of catalogue) t.equal(new FusionError(code, 'x').status, ERROR_CODES[code].status, `${code} status`)
})
