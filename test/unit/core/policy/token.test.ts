import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signToken, verifyToken, loadTokenSecret, SECRET_FILE_NAME } from '../../../../src/core/policy/token.js'

const secret = Buffer.from('0123456789abcdef0123456789abcdef')

t.test('sign then verify', async (t) => {
  const now = 1_000_000
  const { token, expiresAt } = signToken(secret, 'alice', 600_000, now)
  t.equal(expiresAt, now + 600_000)
  t.equal(verifyToken(secret, token, now + 1000), 'alice')
})

t.test('expired, forged and bad tokens are NOT_AUTHORIZED', async (t) => {
  const now = 1_000_000
  const { token } = signToken(secret, 'alice', 1000, now)
  t.throws(() => verifyToken(secret, token, now + 1000), { code: 'NOT_AUTHORIZED', message: /expired/ })
  t.throws(() => verifyToken(Buffer.from('another secret of enough bytes!!'), token, now), { code: 'NOT_AUTHORIZED' })
  // a claims part rewritten to another user keeps the old mac: refused
  const [v, , mac] = token.split('.')
  const forged = `${v}.${Buffer.from(JSON.stringify({ u: 'root', exp: now + 1e9 })).toString('base64url')}.${mac}`
  t.throws(() => verifyToken(secret, forged, now), { code: 'NOT_AUTHORIZED' })
  for (const bad of ['', 'x', 'v1.a.b', 'v2.' + token.slice(3), token + 'x', 'v1..', 'a'.repeat(600)]) {
    t.throws(() => verifyToken(secret, bad, now), { code: 'NOT_AUTHORIZED' }, `refuses ${bad.slice(0, 20)}`)
  }
})

t.test('the secret: given, or a file beside the users file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-secret-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const warnings: string[] = []
  t.throws(() => loadTokenSecret('short', join(dir, 'users'), (m) => warnings.push(m)), { code: 'BAD_OPTION' })
  t.same(loadTokenSecret('x'.repeat(16), join(dir, 'users'), (m) => warnings.push(m)), Buffer.from('x'.repeat(16)))
  const a = loadTokenSecret(undefined, join(dir, 'users'), (m) => warnings.push(m))
  t.equal(a.length, 32)
  const file = join(dir, SECRET_FILE_NAME)
  t.equal(statSync(file).mode & 0o777, 0o600, 'the secret file is private')
  t.same(loadTokenSecret(undefined, join(dir, 'users'), (m) => warnings.push(m)), a, 'the same secret after a restart')
  t.match(readFileSync(file, 'utf8'), /^[0-9a-f]{64}\n$/)
  t.same(warnings, [])
})

t.test('issue 13 item 12: only the canonical spelling of a token is accepted', async (t) => {
  const now = 1_000_000
  const { token } = signToken(secret, 'alice', 600_000, now)
  t.equal(verifyToken(secret, token, now), 'alice', 'the token as signed')
  const [v, claims, mac] = token.split('.') as [string, string, string]
  // The MAC is 32 bytes: 43 base64url characters whose last one carries 2 spare bits.
  const last = mac.charCodeAt(mac.length - 1)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const idx = alphabet.indexOf(String.fromCharCode(last))
  const spare = `${mac.slice(0, -1)}${alphabet[idx ^ 1] as string}`
  t.same(Buffer.from(spare, 'base64url'), Buffer.from(mac, 'base64url'), 'the spare-bit spelling decodes to the same MAC (what the old check compared)')
  const variants: Array<[string, string]> = [
    ['padding on the MAC', `${v}.${claims}.${mac}=`],
    ['two = on the MAC', `${v}.${claims}.${mac}==`],
    ['padding on the claims', `${v}.${claims}==.${mac}`],
    ['a spare bit set in the last MAC character', `${v}.${claims}.${spare}`],
    ['standard base64 characters', `${v}.${claims}.${mac.replace(/-/g, '+').replace(/_/g, '/')}`],
    ['a space inside the MAC', `${v}.${claims}.${mac.slice(0, 10)} ${mac.slice(10)}`],
    ['a stray character the decoder skips', `${v}.${claims}.${mac.slice(0, 10)}*${mac.slice(10)}`]
  ]
  for (const [what, bad] of variants) {
    if (bad === token) continue // e.g. a MAC with no - or _ to swap
    t.throws(() => verifyToken(secret, bad, now), { code: 'NOT_AUTHORIZED' }, `refused: ${what}`)
  }
})
