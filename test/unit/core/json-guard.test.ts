// Issue 13 item 1: JSON from clients nested deeper than 32 levels is refused before
// JSON.parse, which is slow on deep nesting (60-680 ms for one frame at the limit).
import t from 'tap'
import { jsonTooDeep, MAX_JSON_DEPTH } from '../../../src/core/json-guard.js'
import { parseClientFrame } from '../../../src/doors/ws-hub/frames.js'
import { decodeChatPayload } from '../../../src/core/topics/envelope.js'
import { startGateway } from '../../helpers/gateway.js'
import { postJson } from '../../helpers/security.js'

const nested = (n: number): string => '['.repeat(n) + ']'.repeat(n)

t.test('jsonTooDeep counts objects and arrays, not brackets inside strings', async (t) => {
  t.notOk(jsonTooDeep(nested(MAX_JSON_DEPTH)), '32 levels pass')
  t.ok(jsonTooDeep(nested(MAX_JSON_DEPTH + 1)), '33 do not')
  t.ok(jsonTooDeep('{"a":' + '{"b":'.repeat(40)), 'objects count too, closed or not')
  t.notOk(jsonTooDeep(JSON.stringify({ text: '['.repeat(1000) + '{'.repeat(1000) })), 'brackets in a string are text')
  t.notOk(jsonTooDeep(JSON.stringify({ text: '\\"[[[['.repeat(100) })), 'escaped quotes do not end the string')
  t.notOk(jsonTooDeep(JSON.stringify([[[{ a: [1, { b: [] }] }]]])), 'an ordinary document')
})

t.test('a /ws frame, a chat payload and an HTTP body too deep', async (t) => {
  t.throws(() => parseClientFrame('{"type":"chat","text":' + nested(40) + '}'), { code: 'BAD_FRAME', message: /more than 32 deep/ })
  t.same(parseClientFrame(JSON.stringify({ type: 'chat', text: '[[[[' })), { type: 'chat', text: '[[[[', room: undefined, id: undefined })
  const deep = '{"text":' + '['.repeat(1000)
  t.equal(decodeChatPayload(Buffer.from(deep), { from: 'f', ts: 1, via: 'mqtt' }).text, deep, 'a deep chat payload is plain text, not an envelope')
  const { urls } = await startGateway(t)
  const r = await fetch(`${urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"a","payload":' + nested(100) + '}', signal: AbortSignal.timeout(5000) })
  t.equal(r.status, 400)
  t.match(await r.json(), { code: 'BAD_JSON', message: /more than 32 deep/ })
  t.equal((await postJson(`${urls.http}/api/publish`, { topic: 'a/b', payload: 'fine' })).status, 200, 'an ordinary body still works')
  const proto = await fetch(`${urls.http}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"a","payload":"x","__proto__":{"x":1}}', signal: AbortSignal.timeout(5000) })
  t.equal(proto.status, 400, "Fastify's prototype-poisoning check is kept")
})
