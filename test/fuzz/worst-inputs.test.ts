// Issue 13 item 1: every parser of client input runs in linear time. For each parser,
// the worst inputs we know of (found by reading the code and by the fuzzers beside this
// file) are timed at doubling sizes up to the default limit of what a client can send
// there; each call must stay under INPUT_BUDGET_MS. A quadratic parser crosses the budget
// at a few KiB, so the old /ws line trim fails here in about a second.
import t from 'tap'
import { DEFAULTS } from '../../src/core/options.js'
import { parseClientFrame } from '../../src/doors/ws-hub/frames.js'
import { decodeChatPayload } from '../../src/core/topics/envelope.js'
import { decodePacket } from '../../src/engine/message.js'
import { checkTopicFilter, checkTopicName } from '../../src/core/topics/topic-rules.js'
import { createFileAcl, parseAclRules } from '../../src/core/policy/acl-file.js'
import { parseUpstreamConfig, MAX_FILE_BYTES as MAX_BRIDGE_FILE_BYTES } from '../../src/engine/upstream/config.js'
import { UserStore } from '../../src/core/policy/users.js'
import { verifyToken } from '../../src/core/policy/token.js'
import { Auth, cookieValue } from '../../src/core/policy/auth.js'
import { clientIdProblem, connectCloseReason } from '../../src/core/policy/mqtt-rules.js'
import { originAllowed } from '../../src/doors/upgrade-router.js'
import { INPUT_BUDGET_MS, describe, timeUpTo } from '../helpers/timing.js'

/** The largest /ws text frame ws lets through at the defaults. */
const MAX_FRAME = DEFAULTS.maxPayload * 2 + 4096
/** Node's default limit on all request headers together (--max-http-header-size). */
const MAX_HEADERS = 16 * 1024
/** MQTT 3.1.1 strings are at most 65,535 bytes [MQTT-1.5.3]. */
const MQTT_STRING = 65535

interface Case { what: string, max: number, make: (n: number) => string, run: (input: string) => unknown, budgetMs?: number }

/**
 * The operator's files are read at start and on SIGHUP, not sent by clients: they must be
 * linear, and a megabyte of rules (60,000 lines) may take longer than one frame.
 */
const FILE_BUDGET_MS = 500

const frameJson = (body: string, n: number, fill: string): string => body.replace('@', fill.repeat(Math.max(0, Math.floor((n - body.length) / fill.length))))

const secret = Buffer.from('0123456789abcdef0123456789abcdef')
const auth = new Auth({ users: UserStore.fromText(''), secret, tokenTtlMs: 60_000 })
const fileAcl = createFileAcl(parseAclRules('user alice\ntopic read a/#\npattern readwrite home/%u/%c/#\ntopic deny a/+/x\n'))

const BRIDGE_MAX = MAX_BRIDGE_FILE_BYTES
// Refusals are answers too: what is timed is reaching one.
const bridgeParse = (s: string): unknown => { try { return parseUpstreamConfig(s, 'fuzz', () => Buffer.alloc(0)) } catch (err) { return err } }

const cases: Case[] = [
  // /ws frames (src/doors/ws-hub/frames.ts)
  { what: 'frame: newlines then one other character (the old trim regex: quadratic)', max: MAX_FRAME, make: (n) => '\n'.repeat(n - 1) + 'x', run: parseClientFrame },
  { what: 'frame: CRLF pairs then one other character', max: MAX_FRAME, make: (n) => '\r\n'.repeat(Math.floor(n / 2) - 1) + 'x', run: parseClientFrame },
  { what: 'frame: newlines only', max: MAX_FRAME, make: (n) => '\n'.repeat(n), run: parseClientFrame },
  { what: 'frame: blanks then a JSON object', max: MAX_FRAME, make: (n) => ' '.repeat(n - 16) + '{"type":"ping"}', run: parseClientFrame },
  { what: 'frame: { then [ nested to the end (deep JSON)', max: MAX_FRAME, make: (n) => '{"a":' + '['.repeat(n - 5), run: parseClientFrame },
  { what: 'frame: balanced nested arrays', max: MAX_FRAME, make: (n) => '{"a":' + '['.repeat(Math.floor(n / 2) - 4) + ']'.repeat(Math.floor(n / 2) - 4) + '}', run: parseClientFrame },
  { what: 'frame: nested objects', max: MAX_FRAME, make: (n) => '{"a":'.repeat(Math.floor(n / 5)), run: parseClientFrame },
  { what: 'frame: many keys', max: MAX_FRAME, make: (n) => '{' + Array.from({ length: Math.floor(n / 12) }, (_, i) => `"k${i}":1`).join(',') + '}', run: parseClientFrame },
  { what: 'frame: base64 payload with a bad last character', max: MAX_FRAME, make: (n) => frameJson('{"type":"publish","topic":"a","encoding":"base64","payload":"@!"}', n, 'A'), run: parseClientFrame },
  { what: 'frame: escapes in a chat text', max: MAX_FRAME, make: (n) => frameJson('{"type":"chat","text":"@"}', n, '\\u0000\\n'), run: parseClientFrame },
  // Chat payloads from every door (src/core/topics/envelope.ts, src/engine/message.ts)
  { what: 'chat payload: deep JSON', max: DEFAULTS.maxPayload, make: (n) => '{"text":' + '['.repeat(n - 8), run: (s) => decodeChatPayload(Buffer.from(s), { from: 'x', ts: 1, via: 'mqtt' }) },
  { what: 'chat line for format=text: newline, character, newline...', max: DEFAULTS.maxPayload, make: (n) => '\nx'.repeat(Math.floor(n / 2)), run: (s) => decodePacket({ topic: 'chat/a', payload: Buffer.from(s) }).line() },
  // Topic names and filters (src/core/topics/topic-rules.ts), at the frame's size: they are checked before any length limit would matter
  { what: 'topic: slashes', max: MAX_FRAME, make: (n) => '/'.repeat(n), run: (s) => checkTopicName(s, DEFAULTS) },
  { what: 'filter: + levels', max: MAX_FRAME, make: (n) => '+/'.repeat(Math.floor(n / 2)) + '#', run: (s) => checkTopicFilter(s, { maxTopicLength: 65535, maxTopicLevels: 100 }) },
  { what: 'topic: a lone surrogate at the end', max: MAX_FRAME, make: (n) => 'a'.repeat(n - 1) + '\uD800', run: (s) => checkTopicName(s, { maxTopicLength: 65535 * 16, maxTopicLevels: 100 }) },
  { what: 'ACL check: a 32-level topic against patterns', max: DEFAULTS.maxTopicLength, make: (n) => 'home/' + 'a/'.repeat(Math.floor((n - 5) / 2)), run: (s) => { try { fileAcl.checkPublish({ clientId: 'c', username: 'alice', door: 'mqtt' }, s) } catch {} } },
  // Files the operator writes; parsed at start and on SIGHUP (src/core/policy/acl-file.ts, users.ts)
  { what: 'ACL file: one line of blanks', max: 1 << 20, make: (n) => 'topic' + ' '.repeat(n - 6) + 'x', run: parseAclRules, budgetMs: FILE_BUDGET_MS },
  { what: 'ACL file: many rule lines', max: 1 << 20, make: (n) => 'topic read a/b/c\n'.repeat(Math.floor(n / 17)), run: parseAclRules, budgetMs: FILE_BUDGET_MS },
  { what: 'ACL file: pattern of %u', max: 1 << 20, make: (n) => 'pattern ' + '%u'.repeat(Math.floor((n - 8) / 2)), run: parseAclRules, budgetMs: FILE_BUDGET_MS },
  // The bridge file (src/engine/upstream/config.ts): read at start, bounded to 256 KiB, lines to 4,096 characters
  { what: 'bridge file: blank lines', max: BRIDGE_MAX, make: (n) => ' \n'.repeat(Math.floor(n / 2)), run: bridgeParse, budgetMs: FILE_BUDGET_MS },
  { what: 'bridge file: long comment lines', max: BRIDGE_MAX, make: (n) => ('#'.repeat(4000) + '\n').repeat(Math.floor(n / 4001)), run: bridgeParse, budgetMs: FILE_BUDGET_MS },
  { what: 'bridge file: blanks inside a rule line', max: BRIDGE_MAX, make: (n) => 'connection a\nurl mqtt://h\n' + ('topic a/b' + ' '.repeat(4000) + 'out 1\n').repeat(Math.floor(n / 4016)), run: bridgeParse, budgetMs: FILE_BUDGET_MS },
  { what: 'bridge file: a rule of + levels', max: BRIDGE_MAX, make: (n) => 'connection a\nurl mqtt://h\ntopic ' + '+/'.repeat(Math.floor((n - 40) / 2)) + '#', run: bridgeParse, budgetMs: FILE_BUDGET_MS },
  { what: 'users file: CR without LF', max: 1 << 20, make: (n) => '\r'.repeat(n), run: (s) => UserStore.fromText(s), budgetMs: FILE_BUDGET_MS },
  { what: 'users file: a hash of $', max: 1 << 20, make: (n) => 'alice:' + '$'.repeat(n - 6), run: (s) => UserStore.fromText(s), budgetMs: FILE_BUDGET_MS },
  // Tokens, cookies, Authorization and Origin headers (bounded by Node's header limit)
  { what: 'token: dots', max: MAX_HEADERS, make: (n) => 'v1.' + '.'.repeat(n - 3), run: (s) => verifyToken(secret, s) },
  { what: 'Authorization: bearer and blanks', max: MAX_HEADERS, make: (n) => 'Bearer' + ' '.repeat(n - 7) + 'x', run: (s) => auth.tokenOf({ headers: { authorization: s } }) },
  { what: 'Cookie: many pairs', max: MAX_HEADERS, make: (n) => 'a=b; '.repeat(Math.floor(n / 5)), run: (s) => cookieValue(s, 'fusion_token') },
  { what: 'Cookie: percent signs', max: MAX_HEADERS, make: (n) => 'fusion_token=' + '%'.repeat(n - 13), run: (s) => cookieValue(s, 'fusion_token') },
  { what: 'query string: many parameters', max: MAX_HEADERS, make: (n) => '/ws?' + 'name=%00&'.repeat(Math.floor(n / 9)), run: (s) => new URL(s, 'http://localhost').searchParams.getAll('name') },
  { what: 'Origin: a long host', max: MAX_HEADERS, make: (n) => 'http://' + 'a.'.repeat(Math.floor((n - 7) / 2)), run: (s) => originAllowed({ headers: { origin: s, host: '127.0.0.1:3000' } } as never, []) },
  // MQTT CONNECT strings (src/core/policy/mqtt-rules.ts)
  { what: 'MQTT client id: control characters', max: MQTT_STRING, make: (n) => 'http-' + '\n'.repeat(n - 5), run: (s) => clientIdProblem(s, true) },
  { what: 'MQTT will topic: NUL at the end', max: MQTT_STRING, make: (n) => 'a'.repeat(n - 1) + '\u0000', run: (s) => connectCloseReason({ clientId: 'c', will: { topic: s } }) }
]

for (const c of cases) {
  t.test(c.what, async (t) => {
    const budget = c.budgetMs ?? INPUT_BUDGET_MS
    const timings = timeUpTo(c.make, c.run, c.max, budget)
    const last = timings[timings.length - 1] as { size: number, ms: number }
    t.comment(`timing ${c.what}: ${describe(timings.slice(-2))}`)
    t.equal(last.size, c.max, `reached the default limit (${c.max} characters)`)
    t.ok(last.ms <= budget, `the worst input at ${last.size} characters takes ${last.ms.toFixed(1)} ms (budget ${budget} ms)`)
  })
}
