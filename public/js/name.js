// The display name lives in the `fusion_name` cookie, which the /ws hub also reads.

const COOKIE = 'fusion_name'
const ONE_YEAR_S = 365 * 24 * 3600
/** The hub cuts names at 64 characters; cutting here keeps the page and the server in step. */
export const MAX_NAME = 64

const ADJECTIVES = ['amber', 'brisk', 'calm', 'dusky', 'eager', 'fuzzy', 'gentle', 'hazel', 'ivory', 'jolly', 'keen', 'lucky', 'mellow', 'nimble', 'olive', 'plucky', 'quiet', 'rosy', 'sunny', 'tidy', 'vivid', 'witty']
const ANIMALS = ['otter', 'lynx', 'heron', 'badger', 'finch', 'gecko', 'koala', 'lemur', 'marten', 'newt', 'owl', 'panda', 'quokka', 'raven', 'stoat', 'tapir', 'vole', 'wren', 'yak', 'zebu']

function pick (list) {
  const buf = new Uint32Array(1)
  crypto.getRandomValues(buf)
  return list[buf[0] % list.length]
}

/** A fresh random name such as `brisk-otter-42`. */
export function randomName () {
  const buf = new Uint32Array(1)
  crypto.getRandomValues(buf)
  return `${pick(ADJECTIVES)}-${pick(ANIMALS)}-${10 + (buf[0] % 90)}`
}

/** Trims, drops control characters and cuts to MAX_NAME; '' when nothing is left. */
export function cleanName (raw) {
  // eslint-disable-next-line no-control-regex
  return String(raw ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, MAX_NAME)
}

/** The name in the cookie, or undefined. */
export function readNameCookie () {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== COOKIE) continue
    let value = part.slice(eq + 1).trim()
    try { value = decodeURIComponent(value) } catch {}
    const name = cleanName(value)
    return name.length ? name : undefined
  }
  return undefined
}

/** Stores the name for a year, for this site only. */
export function writeNameCookie (name) {
  document.cookie = `${COOKIE}=${encodeURIComponent(name)}; path=/; max-age=${ONE_YEAR_S}; SameSite=Lax`
}

/** The cookie name, or a new random one stored in the cookie on the first visit. */
export function ensureName () {
  const known = readNameCookie()
  if (known) return known
  const name = randomName()
  writeNameCookie(name)
  return name
}
