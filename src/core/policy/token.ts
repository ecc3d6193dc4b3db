import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { FusionError } from '../errors.js'

/**
 * Short-lived login tokens for browsers, which cannot send an Authorization header on a
 * WebSocket: `v1.<claims>.<mac>`, the claims base64url JSON `{"u":user,"exp":ms}`, the
 * mac an HMAC-SHA256 of `v1.<claims>` under the gateway's secret. Nothing is stored
 * server-side; a token dies at `exp`, or sooner when its user leaves the users file.
 */

const VERSION = 'v1'
/** Longer strings are not ours; refusing them early keeps parsing cheap. */
export const MAX_TOKEN_LENGTH = 512
/** Below this a secret could be guessed offline from one token. */
export const MIN_SECRET_BYTES = 16
/** Where the secret is kept when --token-secret is not given: beside the users file. */
export const SECRET_FILE_NAME = 'fusion-token.secret'

export interface SignedToken {
  readonly token: string
  readonly expiresAt: number
}

function mac (secret: Buffer, data: string): Buffer {
  return createHmac('sha256', secret).update(data).digest()
}

/** Signs a token for `username` valid `ttlMs` from `now`. */
export function signToken (secret: Buffer, username: string, ttlMs: number, now = Date.now()): SignedToken {
  const expiresAt = now + ttlMs
  const body = `${VERSION}.${Buffer.from(JSON.stringify({ u: username, exp: expiresAt })).toString('base64url')}`
  return { token: `${body}.${mac(secret, body).toString('base64url')}`, expiresAt }
}

/**
 * The bytes of `text` when it is the one spelling signToken writes: base64url without
 * padding, every character from its alphabet and the unused low bits of the last one
 * zero. Node's decoder is lenient (it skips `=`, spaces and unknown characters, takes
 * `+` and `/`, ignores the spare bits), so one MAC would otherwise have many accepted
 * spellings: a token that is not byte-for-byte what we signed is refused. Linear.
 */
export function canonicalBase64url (text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 === 1) return undefined
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 /* - */ || c === 95 /* _ */
    if (!ok) return undefined
  }
  const bytes = Buffer.from(text, 'base64url')
  // Re-encoding gives back the same text only when the spare bits were zero.
  return bytes.toString('base64url') === text ? bytes : undefined
}

function denied (why: string): FusionError {
  return new FusionError('NOT_AUTHORIZED', why)
}

/** The user a token names. Throws NOT_AUTHORIZED when it is malformed, forged or expired. */
export function verifyToken (secret: Buffer, token: string, now = Date.now()): string {
  if (token.length > MAX_TOKEN_LENGTH) throw denied('the token is not valid')
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] !== VERSION) throw denied('the token is not valid')
  const body = `${parts[0]}.${parts[1]}`
  const claimsBytes = canonicalBase64url(parts[1] as string)
  const given = canonicalBase64url(parts[2] as string)
  if (claimsBytes === undefined || given === undefined) throw denied('the token is not valid')
  const expected = mac(secret, body)
  // Length first: timingSafeEqual throws on unequal lengths, and the length is public anyway.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw denied('the token is not valid')
  let claims: unknown
  try {
    claims = JSON.parse(claimsBytes.toString('utf8'))
  } catch {
    throw denied('the token is not valid')
  }
  const { u, exp } = (claims ?? {}) as { u?: unknown, exp?: unknown }
  if (typeof u !== 'string' || typeof exp !== 'number') throw denied('the token is not valid')
  if (exp <= now) throw denied('the token has expired; log in again')
  return u
}

/**
 * The signing secret: `--token-secret` when given (at least MIN_SECRET_BYTES), else
 * the file beside the users file, created with 32 random bytes (mode 0600) on first
 * start so tokens survive a restart. When that file cannot be written, a random secret
 * for this process only (tokens then end with it), with a warning.
 */
export function loadTokenSecret (given: string | undefined, usersFile: string, warn: (msg: string) => void): Buffer {
  if (given !== undefined) {
    const secret = Buffer.from(given, 'utf8')
    if (secret.length < MIN_SECRET_BYTES) throw new FusionError('BAD_OPTION', `--token-secret must be at least ${MIN_SECRET_BYTES} bytes`)
    return secret
  }
  const file = join(dirname(usersFile), SECRET_FILE_NAME)
  try {
    const hex = readFileSync(file, 'utf8').trim()
    if (/^[0-9a-f]{64,}$/i.test(hex)) return Buffer.from(hex, 'hex')
    throw new FusionError('BAD_OPTION', `${file} must hold at least 64 hex digits (delete it to make a new one)`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof FusionError) throw err
      warn(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); login tokens last until this process ends`)
      return randomBytes(32)
    }
  }
  const secret = randomBytes(32)
  try {
    // wx: two gateways starting together must not overwrite each other's secret.
    writeFileSync(file, secret.toString('hex') + '\n', { mode: 0o600, flag: 'wx' })
    return secret
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadTokenSecret(undefined, usersFile, warn)
    warn(`cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); login tokens last until this process ends`)
    return secret
  }
}
