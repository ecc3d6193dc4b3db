import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync, existsSync, chmodSync } from 'node:fs'
import { FusionError } from '../errors.js'

/**
 * The one user store for every door: a text file of `name:scrypt$N$r$p$salt$hash`
 * lines (salt and hash in base64), optionally followed by `:admin` for a user who may
 * use the admin API (GET /api/acl/explain). Files without the mark read as before.
 * Passwords are never stored, only salted scrypt hashes; `mqtt-fusion user add` writes
 * the lines.
 */

/** The third field of a users-file line that marks an admin. */
export const ADMIN_MARK = 'admin'

/** scrypt cost: 16 MiB and roughly 50 ms per check, so a stolen file is slow to crack. */
const COST = { N: 16384, r: 8, p: 1 } as const
const KEY_BYTES = 32
const SALT_BYTES = 16
// A file could name any cost; these bounds keep a bad line from taking the process's memory.
const MAX_N = 1 << 20
const MAX_RP = 16
/** Longest password accepted (bytes): a megabyte password is only a way to burn CPU. */
export const MAX_PASSWORD_BYTES = 1024
/**
 * Checks running at once. Each holds 16 MiB and a libuv thread for ~50 ms; a login flood
 * past this answers RATE_LIMITED at once instead of queueing memory and time.
 */
export const MAX_CONCURRENT_CHECKS = 8

// Letters, digits and . _ @ - only: a name can then never widen an ACL pattern (%u)
// nor break the file's `name:hash` lines.
const NAME = /^[A-Za-z0-9._@-]{1,64}$/

export function checkUsername (name: string): string | undefined {
  return NAME.test(name) ? undefined : 'a user name is 1 to 64 letters, digits, ".", "_", "@" or "-"'
}

function scryptAsync (password: string, salt: Buffer, params: { N: number, r: number, p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

/** A new salted hash line body for `password`. */
export async function hashPassword (password: string): Promise<string> {
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw new FusionError('BAD_OPTION', `a password is at most ${MAX_PASSWORD_BYTES} bytes`)
  const salt = randomBytes(SALT_BYTES)
  const key = await scryptAsync(password, salt, COST)
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

interface ParsedHash { N: number, r: number, p: number, salt: Buffer, key: Buffer }

function parseHash (stored: string): ParsedHash | undefined {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number]
  if (!Number.isInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0) return undefined
  if (!Number.isInteger(r) || r < 1 || r > MAX_RP || !Number.isInteger(p) || p < 1 || p > MAX_RP) return undefined
  const salt = Buffer.from(parts[4] as string, 'base64')
  const key = Buffer.from(parts[5] as string, 'base64')
  if (salt.length < 8 || key.length !== KEY_BYTES) return undefined
  return { N, r, p, salt, key }
}

/** True when `password` matches the stored hash; compares in constant time. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored)
  if (!h || Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return false
  const key = await scryptAsync(password, h.salt, h)
  return timingSafeEqual(key, h.key)
}

// Checked for unknown names, so "no such user" takes as long as "wrong password".
const DUMMY = `scrypt$${COST.N}$${COST.r}$${COST.p}$${Buffer.alloc(SALT_BYTES).toString('base64')}$${Buffer.alloc(KEY_BYTES).toString('base64')}`

interface UsersText { readonly hashes: Map<string, string>, readonly admins: Set<string> }

// Base64 and the hash's `$` fields hold no `:`, so a third field cannot be mistaken for a hash.
function parseUsersText (text: string, source: string): UsersText {
  const hashes = new Map<string, string>()
  const admins = new Set<string>()
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] as string).trim()
    if (!line || line.startsWith('#')) continue
    const [name = '', hash = '', mark, ...more] = line.split(':')
    const bad = checkUsername(name) ??
      (parseHash(hash) ? undefined : 'the hash is not a scrypt$N$r$p$salt$hash line (use mqtt-fusion user add)') ??
      (mark === undefined || (mark === ADMIN_MARK && more.length === 0) ? undefined : `after the hash only ":${ADMIN_MARK}" may follow`)
    if (bad) throw new FusionError('BAD_OPTION', `--users ${source} line ${n + 1}: ${bad}`)
    hashes.set(name, hash)
    if (mark === ADMIN_MARK) admins.add(name)
  }
  return { hashes, admins }
}

/** The users of one file, read at start. */
export class UserStore {
  #users: ReadonlyMap<string, string>
  #admins: ReadonlySet<string>
  #checking = 0

  constructor (users: ReadonlyMap<string, string>, admins: ReadonlySet<string> = new Set()) {
    this.#users = users
    this.#admins = admins
  }

  static fromText (text: string, source = 'users'): UserStore {
    const { hashes, admins } = parseUsersText(text, source)
    return new UserStore(hashes, admins)
  }

  /** Reads `file`; a missing, unreadable or bad file is a BAD_OPTION naming it. */
  static load (file: string): UserStore {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new FusionError('BAD_OPTION', `--users ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); create it with: mqtt-fusion user add NAME --users ${file}`)
    }
    return UserStore.fromText(text, file)
  }

  get size (): number { return this.#users.size }

  /**
   * Takes the users of another store (a reread file): logins and tokens checked from
   * now on see them, so a removed user's tokens stop working at once.
   */
  replaceWith (other: UserStore): void {
    this.#users = other.#users
    this.#admins = other.#admins
  }

  has (name: string): boolean { return this.#users.has(name) }

  /** True when `name` is in the file with the `:admin` mark. */
  isAdmin (name: string): boolean { return this.#users.has(name) && this.#admins.has(name) }

  /**
   * True when `name` exists and `password` is its password. Throws RATE_LIMITED when
   * MAX_CONCURRENT_CHECKS checks are already running.
   */
  async verify (name: string, password: string): Promise<boolean> {
    if (this.#checking >= MAX_CONCURRENT_CHECKS) throw new FusionError('RATE_LIMITED', 'too many logins at once; try again shortly')
    this.#checking++
    try {
      const stored = this.#users.get(name)
      const ok = await verifyPassword(password, stored ?? DUMMY)
      return ok && stored !== undefined
    } finally {
      this.#checking--
    }
  }
}

/**
 * Adds `name` to `file` or replaces its password; creates the file (mode 0600) when
 * missing. `admin` true or false sets or clears the admin mark; left out, an existing
 * user keeps theirs. Writes a new file and renames it over the old one, so a crash never
 * leaves half a file.
 */
export async function addUser (file: string, name: string, password: string, admin?: boolean): Promise<'added' | 'updated'> {
  const bad = checkUsername(name)
  if (bad) throw new FusionError('BAD_OPTION', bad)
  if (password.length === 0) throw new FusionError('BAD_OPTION', 'the password must not be empty')
  const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const before = parseUsersText(text, file) // refuse to rewrite a file we could not read back
  const marked = admin ?? before.admins.has(name)
  const line = `${name}:${await hashPassword(password)}${marked ? `:${ADMIN_MARK}` : ''}`
  let found = false
  const lines = text.split(/\r?\n/).filter((l, i, all) => l.length > 0 || i < all.length - 1).map((l) => {
    const t = l.trim()
    if (!t.startsWith('#') && t.slice(0, t.indexOf(':')) === name) { found = true; return line }
    return l
  })
  if (!found) lines.push(line)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, lines.join('\n') + '\n', { mode: 0o600 })
  renameSync(tmp, file)
  chmodSync(file, 0o600)
  return found ? 'updated' : 'added'
}

/** Removes `name` from `file`; false when it was not there. */
export function removeUser (file: string, name: string): boolean {
  const text = readFileSync(file, 'utf8')
  parseUsersText(text, file)
  const lines = text.split(/\r?\n/)
  const kept = lines.filter((l) => { const t = l.trim(); return t.startsWith('#') || t.slice(0, t.indexOf(':')) !== name || t.length === 0 })
  if (kept.length === lines.length) return false
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, kept.join('\n'), { mode: 0o600 })
  renameSync(tmp, file)
  return true
}
