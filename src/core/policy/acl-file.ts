import { readFileSync } from 'node:fs'
import { FusionError } from '../errors.js'
import { checkTopicFilter, checkTopicName } from '../topics/topic-rules.js'
import { checkReservedPublish, reservedPublishReason, type Acl, type AclDecision, type Identity } from './acl.js'
import { filtersOverlap, ruleCovers, splitLevels, type Levels } from '../topics/topic-match.js'

/**
 * A Mosquitto-like rules file, read once at start:
 *
 * ```
 * # anonymous clients (rules before the first `user` line)
 * topic read chat/#
 * user alice
 * topic readwrite chat/#
 * topic deny chat/admin
 * # every client; %u is the user name, %c the client id
 * pattern write presence/%c
 * pattern readwrite home/%u/#
 * ```
 *
 * Access is `read`, `write`, `readwrite` (the default when left out) or `deny`.
 * Nothing is allowed unless a rule allows it; a `deny` that matches wins over any allow.
 * Every rule keeps its line, so a decision can name the rule that made it (explain()).
 */

const READ = 1
const WRITE = 2
const DENY = 4

const ACCESS: Record<string, number> = { read: READ, write: WRITE, readwrite: READ | WRITE, deny: DENY }

/** Where a rule was written: what explain() reports. */
interface RuleOrigin {
  /** 1-based line in the file. */
  readonly line: number
  /** The line as written, trimmed. */
  readonly text: string
  /** `anonymous`, `user NAME` or `pattern` (patterns hold for everyone). */
  readonly section: string
}

interface Rule extends RuleOrigin {
  readonly access: number
  readonly levels: Levels
}

/** A pattern level: itself, or the user name (%u), the client id (%c), or text holding them. */
type PatternLevel = string | { readonly whole: '%u' | '%c' } | { readonly mixed: string }

interface PatternRule extends RuleOrigin {
  readonly access: number
  readonly levels: readonly PatternLevel[]
  readonly usesUser: boolean
  readonly usesClient: boolean
}

export interface AclRules {
  /** The file (or name) the rules came from. */
  readonly source: string
  readonly anonymous: readonly Rule[]
  readonly users: ReadonlyMap<string, readonly Rule[]>
  readonly patterns: readonly PatternRule[]
}

// Limits only matter for checking the rules' syntax; real topics are checked by each door.
const RULE_LIMITS = { maxTopicLength: 65535, maxTopicLevels: 100 }
// A substituted value holding one of these would widen the rule (a user named `#`).
const UNSAFE_VALUE = /[/+#\u0000]/

/** Parses the rules text; `source` names it in errors. Throws BAD_OPTION with the line number. */
export function parseAclRules (text: string, source = 'acl'): AclRules {
  const anonymous: Rule[] = []
  const users = new Map<string, Rule[]>()
  const patterns: PatternRule[] = []
  let current: Rule[] = anonymous
  let section = 'anonymous'
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] as string).trim()
    if (line.length === 0 || line.startsWith('#')) continue
    const fail = (why: string): never => { throw new FusionError('BAD_OPTION', `--acl ${source} line ${n + 1}: ${why}`) }
    const space = line.search(/\s/)
    const keyword = space < 0 ? line : line.slice(0, space)
    let rest = space < 0 ? '' : line.slice(space).trim()
    if (keyword === 'user') {
      if (!rest) fail('user needs a name')
      const list = users.get(rest) ?? []
      users.set(rest, list)
      current = list
      section = `user ${rest}`
      continue
    }
    if (keyword !== 'topic' && keyword !== 'pattern') fail(`unknown keyword "${keyword.slice(0, 40)}" (use user, topic or pattern)`)
    let access = READ | WRITE
    const word = rest.split(/\s+/, 1)[0] ?? ''
    // As in Mosquitto, a lone access word is a missing filter, not a topic named `read`.
    if (Object.hasOwn(ACCESS, word)) {
      access = ACCESS[word] as number
      rest = rest.slice(word.length).trim()
    }
    if (!rest) fail(`${keyword} needs a topic filter`)
    const probe = keyword === 'pattern' ? rest.replace(/%[uc]/g, 'x') : rest
    try {
      checkTopicFilter(probe, RULE_LIMITS)
    } catch (err) {
      fail(`"${rest.slice(0, 80)}": ${(err as Error).message}`)
    }
    const origin = { line: n + 1, text: line }
    if (keyword === 'topic') current.push({ access, levels: splitLevels(rest), ...origin, section })
    else patterns.push({ ...compilePattern(access, rest), ...origin, section: 'pattern' })
  }
  return { source, anonymous, users, patterns }
}

// Split once at start: a check then only fills in the user and client id.
function compilePattern (access: number, text: string): Omit<PatternRule, keyof RuleOrigin> {
  const levels = splitLevels(text).map((l): PatternLevel => {
    if (l === '%u' || l === '%c') return { whole: l }
    return l.includes('%u') || l.includes('%c') ? { mixed: l } : l
  })
  return { access, levels, usesUser: text.includes('%u'), usesClient: text.includes('%c') }
}

/** What a pattern becomes for `who` (whose values were found safe). */
function substitute (p: PatternRule, user: string, client: string): Levels {
  return p.levels.map((l) => {
    if (typeof l === 'string') return l
    if ('whole' in l) return l.whole === '%u' ? user : client
    return l.mixed.replace(/%[uc]/g, (m) => (m === '%u' ? user : client))
  })
}

/**
 * Decides one request and says by which rule: a matching deny refuses (that deny is
 * returned), else the first matching allow of that kind admits (that allow is returned);
 * undefined when no rule matched, which refuses. The checks and explain() both call this,
 * so an explanation is the decision itself, not a second matcher. Runs on every publish:
 * it allocates only for the patterns it must look at.
 */
function decide (rules: AclRules, who: Identity, target: Levels, want: number): Rule | PatternRule | undefined {
  const subscribe = want === READ
  let allow: Rule | PatternRule | undefined
  const own = who.username === undefined ? rules.anonymous : rules.users.get(who.username)
  if (own) {
    for (const r of own) {
      if (r.access & DENY) {
        if (subscribe ? filtersOverlap(r.levels, target) : ruleCovers(r.levels, target)) return r
      } else if (allow === undefined && (r.access & want) && ruleCovers(r.levels, target)) {
        allow = r
      }
    }
  }
  if (rules.patterns.length === 0) return allow
  const userOk = who.username !== undefined && !UNSAFE_VALUE.test(who.username)
  // Every door gives a client id (Aedes assigns one to an empty CONNECT id); only
  // explain() asks without one, and then no %c pattern can match.
  const clientOk = who.clientId !== '' && !UNSAFE_VALUE.test(who.clientId)
  for (const p of rules.patterns) {
    const deny = (p.access & DENY) !== 0
    // Once allowed, only a deny can change the answer.
    if (!deny && (allow !== undefined || !(p.access & want))) continue
    if ((p.usesUser && !userOk) || (p.usesClient && !clientOk)) continue
    const levels = substitute(p, who.username ?? '', who.clientId)
    if (deny) {
      if (subscribe ? filtersOverlap(levels, target) : ruleCovers(levels, target)) return p
    } else if (ruleCovers(levels, target)) {
      allow = p
    }
  }
  return allow
}

function admits (r: Rule | PatternRule | undefined): boolean {
  return r !== undefined && (r.access & DENY) === 0
}

/**
 * The Acl for a rules file. A subscription is allowed when a read rule covers the whole
 * filter and no deny rule overlaps it, so no message on a denied topic can reach it; a
 * publish when a write rule matches the topic and no deny rule does. The reserved-topic
 * rules of the default policy hold too.
 */
export function createFileAcl (rules: AclRules): Acl {
  return {
    checkPublish (who, topic) {
      checkReservedPublish(who, topic)
      if (!admits(decide(rules, who, splitLevels(topic), WRITE))) {
        throw new FusionError('ACL_DENIED', `publish to ${topic} is not allowed`)
      }
    },
    checkSubscribe (who, filter) {
      if (!admits(decide(rules, who, splitLevels(filter), READ))) {
        throw new FusionError('ACL_DENIED', `subscribe to ${filter} is not allowed`)
      }
    },
    explain (asked, access, target) {
      // A publish goes to a topic name, a subscription to a filter: the same checks as
      // the doors make (BAD_TOPIC), with the rules file's generous limits.
      if (access === 'write') checkTopicName(target, RULE_LIMITS)
      else checkTopicFilter(target, RULE_LIMITS)
      const who: Identity = { clientId: asked.clientId ?? '', username: asked.username, door: 'http' }
      if (access === 'write') {
        const why = reservedPublishReason(who.clientId, target)
        if (why !== undefined) return { allowed: false, by: 'builtin', detail: `built-in rule: ${why}` }
      }
      const r = decide(rules, who, splitLevels(target), access === 'write' ? WRITE : READ)
      if (r === undefined) {
        const whose = who.username === undefined ? 'the anonymous rules' : rules.users.has(who.username) ? `the rules of user ${who.username}` : `the rules (no \`user ${who.username}\` section)`
        return { allowed: false, by: 'default', detail: `no rule matched in ${whose} or the patterns: nothing is allowed unless a rule allows it` }
      }
      const decision: AclDecision = {
        allowed: admits(r),
        by: 'rule',
        rule: { file: rules.source, line: r.line, text: r.text, section: r.section },
        detail: `${rules.source}:${r.line}: ${r.text}${r.section === 'anonymous' || r.section === 'pattern' ? ` (${r.section})` : ` (under ${r.section})`}`
      }
      return decision
    }
  }
}

/** Reads and parses a rules file; a missing or bad file is a BAD_OPTION naming it. */
export function loadAclFile (file: string): Acl {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new FusionError('BAD_OPTION', `--acl ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  return createFileAcl(parseAclRules(text, file))
}
