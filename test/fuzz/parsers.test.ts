// Property-based fuzzing (fast-check) of every parser of client input, called directly:
// /ws frames, topic names and filters, chat envelopes, /ws query parameters, the ACL and
// users files, tokens, cookies, Authorization, Origin and Host, MQTT CONNECT strings.
// For every input: no throw escapes but our own coded errors, each call stays within
// INPUT_BUDGET_MS, and what is accepted obeys the rules (an oracle written apart from the code).
import t from 'tap'
import { FusionError } from '../../src/core/errors.js'
import { DEFAULTS } from '../../src/core/options.js'
import { parseClientFrame } from '../../src/doors/ws-hub/frames.js'
import { checkTopicFilter, checkTopicName } from '../../src/core/topics/topic-rules.js'
import { decodeChatPayload } from '../../src/core/topics/envelope.js'
import { readJoin } from '../../src/doors/ws-hub/join.js'
import { createDefaultAcl } from '../../src/core/policy/acl.js'
import { createFileAcl, parseAclRules } from '../../src/core/policy/acl-file.js'
import { UserStore } from '../../src/core/policy/users.js'
import { signToken, verifyToken } from '../../src/core/policy/token.js'
import { Auth, cookieValue } from '../../src/core/policy/auth.js'
import { OriginCheck } from '../../src/core/policy/origin-check.js'
import { clientIdProblem, connectCloseReason } from '../../src/core/policy/mqtt-rules.js'
import { cleanName } from '../../src/core/admit.js'
import { call, fc, mutateText, mutations, RUNS, SEED, slowest } from './fuzz-support.js'

const params = { numRuns: RUNS, seed: SEED }

// Characters that matter to the parsers, so short random strings hit the edges often.
const edgy = fc.constantFrom('a', 'b', '/', '+', '#', '$', '%', 'u', 'c', '\u0000', '\u001b', '\n', '\r', ' ', '\t', 'é', '\uD800', '\uDC00', '😀', '{', '}', '"', '\\', '=', ';', ':', '.', '-', '_', '[', ']')
const edgyString = (maxLength = 40): fc.Arbitrary<string> => fc.oneof(
  fc.string({ unit: edgy, maxLength }),
  fc.string({ unit: 'binary', maxLength }),
  fc.string({ maxLength })
)
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), edgyString(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null))

// ---- oracles, written from the specification rather than from the code ----

const LIMITS = { maxTopicLength: DEFAULTS.maxTopicLength, maxTopicLevels: DEFAULTS.maxTopicLevels }

/** True when every UTF-16 surrogate is half of a pair: the string can be UTF-8 [MQTT-1.5.3-1]. */
function wellFormed (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1)
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false
      i++
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false
    }
  }
  return true
}

/** MQTT 3.1.1 4.7 plus our length and depth limits, for a topic name or a filter. */
function topicOk (s: string, filter: boolean): boolean {
  if (s.length === 0 || s.includes('\u0000') || !wellFormed(s)) return false
  if (Buffer.byteLength(s) > LIMITS.maxTopicLength || s.split('/').length > LIMITS.maxTopicLevels) return false
  const levels = s.split('/')
  if (!filter) return !s.includes('+') && !s.includes('#')
  return levels.every((l, i) => (!l.includes('#') || (l === '#' && i === levels.length - 1)) && (!l.includes('+') || l === '+'))
}

t.test('/ws frames: arbitrary text', async (t) => {
  fc.assert(fc.property(edgyString(200), (text) => {
    const out = call('frames', parseClientFrame, text, ['BAD_JSON', 'BAD_FRAME'])
    if (out instanceof FusionError) return text.trimStart().startsWith('{')
    if (out.type === 'line') {
      return !text.trimStart().startsWith('{') && text.startsWith(out.text) && !/[\r\n]$/.test(out.text) && /^[\r\n]*$/.test(text.slice(out.text.length))
    }
    return true
  }), params)
  t.pass(`slowest call ${slowest.get('frames')?.toFixed(2)} ms`)
})

t.test('/ws frames: JSON objects shaped like frames, then mutated', async (t) => {
  const frame = fc.record({
    type: fc.oneof(fc.constantFrom('chat', 'publish', 'subscribe', 'unsubscribe', 'ping', 'other'), anyValue),
    text: anyValue,
    room: anyValue,
    topic: fc.oneof(edgyString(), anyValue),
    payload: anyValue,
    encoding: fc.oneof(fc.constantFrom('base64', 'utf8', 'utf-8', 'hex'), anyValue),
    qos: fc.oneof(fc.constantFrom(0, 1, 2), anyValue),
    retain: anyValue,
    since: fc.oneof(fc.nat(), anyValue),
    id: fc.oneof(edgyString(140), fc.integer(), anyValue)
  }, { requiredKeys: [] })
  fc.assert(fc.property(frame, fc.option(mutations(), { nil: undefined }), (obj, muts) => {
    const json = JSON.stringify(obj)
    const text = muts ? mutateText(json, muts) : json
    const out = call('frames', parseClientFrame, text, ['BAD_JSON', 'BAD_FRAME'])
    if (out instanceof FusionError) {
      const id = (out as { frameId?: unknown }).frameId
      return id === undefined || (typeof id === 'string' && id.length <= 128) || (typeof id === 'number' && Number.isFinite(id))
    }
    switch (out.type) {
      case 'line': return !text.trimStart().startsWith('{')
      case 'chat': return typeof out.text === 'string' && (out.room === undefined || (typeof out.room === 'string' && out.room.length > 0))
      case 'publish': return typeof out.topic === 'string' && Buffer.isBuffer(out.payload) && (out.qos === 0 || out.qos === 1) && typeof out.retain === 'boolean'
      case 'subscribe': return typeof out.topic === 'string' && (out.since === undefined || (Number.isInteger(out.since) && out.since >= 0))
      case 'unsubscribe': return typeof out.topic === 'string'
      case 'ping': return true
    }
    return false
  }), params)
  t.pass()
})

t.test('topic names and filters: accepted exactly when the MQTT rules say so', async (t) => {
  const topic = fc.oneof(edgyString(60), fc.array(fc.constantFrom('a', '+', '#', '', '$SYS', 'a+', '#a', 'é', '\uD800'), { maxLength: 40 }).map((l) => l.join('/')))
  fc.assert(fc.property(topic, (s) => {
    const name = call('topic name', (x: string) => checkTopicName(x, LIMITS), s, ['BAD_TOPIC', 'LIMIT_EXCEEDED'])
    const filter = call('topic filter', (x: string) => checkTopicFilter(x, LIMITS), s, ['BAD_TOPIC', 'LIMIT_EXCEEDED'])
    return (name === s) === topicOk(s, false) && (filter === s) === topicOk(s, true)
  }), params)
  t.pass()
})

t.test('chat payloads from any door: never throw, always text', async (t) => {
  const payload = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
    fc.record({ text: anyValue, from: anyValue, ts: anyValue, via: anyValue }, { requiredKeys: [] }).map((o) => Buffer.from(JSON.stringify(o))))
  fc.assert(fc.property(payload, (p) => {
    const env = call('chat envelope', (b: Buffer) => decodeChatPayload(b, { from: 'fallback', ts: 1, via: 'mqtt' }), p)
    if (env instanceof FusionError) return false
    return typeof env.text === 'string' && typeof env.from === 'string' && env.from.length > 0 && Number.isFinite(env.ts) && typeof env.via === 'string'
  }), params)
  t.pass()
})

t.test('/ws query parameters (name, room, format, presence, since) and the name cookie', async (t) => {
  const deps = { acl: createDefaultAcl(), limits: LIMITS, guestName: () => 'guest-1' }
  const key = fc.constantFrom('name', 'room', 'format', 'presence', 'since', 'token', 'x')
  const query = fc.array(fc.tuple(key, edgyString(80)), { maxLength: 8 })
  fc.assert(fc.property(query, edgyString(80), (pairs, cookie) => {
    const qs = new URLSearchParams(pairs).toString()
    const req = { url: `/ws?${qs}`, headers: { cookie: `fusion_name=${cookie}` } }
    const out = call('ws query', (r: typeof req) => readJoin(r as never, 'ws-00000000', deps), req, ['ACL_DENIED', 'NOT_AUTHORIZED'])
    if (out instanceof FusionError) return false
    // A name without control characters (C0, DEL, C1), at most 64; a room that is a valid topic level; since a safe integer.
    return !/[\u0000-\u001f\u007f-\u009f]/.test(out.name) && out.name.length > 0 && out.name.length <= 64 &&
      topicOk(`chat/${out.room}`, false) && out.room.length <= 128 &&
      (out.format === 'json' || out.format === 'text') &&
      (out.since === undefined || Number.isSafeInteger(out.since))
  }), params)
  fc.assert(fc.property(edgyString(200), (raw) => {
    const name = call('clean name', cleanName, raw)
    return name === undefined || (typeof name === 'string' && name.length > 0 && name.length <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(name))
  }), params)
  t.pass()
})

t.test('the ACL file: parsed or refused with BAD_OPTION; checks answer or say ACL_DENIED', async (t) => {
  const line = fc.oneof(
    fc.tuple(fc.constantFrom('topic', 'pattern', 'user', '#', 'bogus', ''), fc.constantFrom('read', 'write', 'readwrite', 'deny', '', 'x'), fc.oneof(edgyString(30), fc.constantFrom('a/#', '+/b', '%u/#', 'home/%c', '$SYS/#', '#')))
      .map(([k, a, f]) => `${k} ${a} ${f}`),
    edgyString(60)
  )
  const who = fc.record({ clientId: edgyString(20), username: fc.option(edgyString(20), { nil: undefined }), door: fc.constantFrom('mqtt', 'mqtt-ws', 'ws', 'http') })
  fc.assert(fc.property(fc.array(line, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), who, edgyString(40), (lines, eol, id, topic) => {
    const rules = call('acl file', parseAclRules, lines.join(eol), ['BAD_OPTION'])
    if (rules instanceof FusionError) return /line \d+/.test(rules.message)
    const acl = createFileAcl(rules)
    call('acl publish', (s: string) => acl.checkPublish(id as never, s), topic, ['ACL_DENIED'])
    call('acl subscribe', (s: string) => acl.checkSubscribe(id as never, s), topic, ['ACL_DENIED'])
    return true
  }), params)
  t.pass()
})

t.test('the users file: parsed or refused with BAD_OPTION naming the line', async (t) => {
  const hashPart = fc.oneof(fc.constantFrom('scrypt', '16384', '8', '1', '0', '-1', '1048577', '3', 'AAAAAAAAAAAAAAAAAAAAAA==', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='), edgyString(12))
  const line = fc.oneof(
    fc.tuple(edgyString(20), fc.array(hashPart, { minLength: 1, maxLength: 7 })).map(([name, parts]) => `${name}:${parts.join('$')}`),
    edgyString(60)
  )
  fc.assert(fc.property(fc.array(line, { maxLength: 8 }), (lines) => {
    const out = call('users file', (s: string) => UserStore.fromText(s), lines.join('\n'), ['BAD_OPTION'])
    return out instanceof FusionError ? /line \d+/.test(out.message) : out.size <= lines.length
  }), params)
  t.pass()
})

t.test('tokens: only the exact token signed is accepted; anything else is NOT_AUTHORIZED', async (t) => {
  const secret = Buffer.from('0123456789abcdef0123456789abcdef')
  const now = 1_000_000
  const { token } = signToken(secret, 'alice', 600_000, now)
  fc.assert(fc.property(mutations(), (muts) => {
    const text = mutateText(token, muts)
    const out = call('token', (s: string) => verifyToken(secret, s, now), text, ['NOT_AUTHORIZED'])
    return text === token ? out === 'alice' : out instanceof FusionError
  }), params)
  fc.assert(fc.property(edgyString(600), (text) => call('token', (s: string) => verifyToken(secret, s, now), text, ['NOT_AUTHORIZED']) instanceof FusionError), params)
  t.pass()
})

t.test('cookies, Authorization and ?token=: a string or nothing, never a throw', async (t) => {
  const auth = new Auth({ users: UserStore.fromText(''), secret: Buffer.alloc(32, 7), tokenTtlMs: 60_000 })
  fc.assert(fc.property(edgyString(120), edgyString(60), edgyString(60), (cookie, authorization, query) => {
    const v = call('cookie', (h: string) => cookieValue(h, 'fusion_token'), cookie)
    const tok = call('tokenOf', () => auth.tokenOf({ url: `/mqtt?${query}`, headers: { authorization, cookie } }), undefined)
    const user = call('userOfRequest', () => auth.userOfRequest({ url: `/mqtt?${query}`, headers: { authorization, cookie } }), undefined, ['NOT_AUTHORIZED'])
    return (v === undefined || typeof v === 'string') && (tok === undefined || typeof tok === 'string') && user instanceof FusionError
  }), params)
  t.equal(cookieValue('a=1; fusion_token=abc%20d; b=2', 'fusion_token'), 'abc d')
})

t.test('Origin and Host: a yes or a no, never a throw', async (t) => {
  const host = fc.oneof(edgyString(30), fc.constantFrom('127.0.0.1:3000', 'localhost', '[::1]:3000', 'evil.example:3000', ''))
  const origin = fc.oneof(edgyString(40), host.map((h) => `http://${h}`), host.map((h) => `https://${h}`), fc.constant('null'))
  const checks = [true, false].flatMap((secure) => [true, false].map((loopbackOnly) => new OriginCheck({ allowed: ['http://good.example'], secure, loopbackOnly })))
  fc.assert(fc.property(fc.option(host, { nil: undefined }), fc.option(origin, { nil: undefined }), (h, o) => {
    const req = { headers: { host: h, origin: o } }
    return checks.every((c) => {
      const r = call('origin', (x: typeof req) => c.refusal(x), req)
      return r === undefined || typeof r === 'string'
    })
  }), params)
  t.pass()
})

t.test('MQTT CONNECT strings: a reason or nothing', async (t) => {
  fc.assert(fc.property(edgyString(300), fc.boolean(), fc.option(edgyString(40), { nil: undefined }), (id, clean, will) => {
    const a = call('client id', (s: string) => clientIdProblem(s, clean), id)
    const b = call('connect', (s: string) => connectCloseReason({ clientId: s, clean, username: s, will: will === undefined ? undefined : { topic: will } }), id)
    return (a === undefined || typeof a === 'string') && (b === undefined || typeof b === 'string')
  }), params)
  t.pass()
})

t.test('slowest call per parser', async (t) => {
  for (const [what, ms] of [...slowest].sort((a, b) => b[1] - a[1])) t.comment(`fuzz slowest ${what}: ${ms.toFixed(2)} ms`)
  t.pass()
})
