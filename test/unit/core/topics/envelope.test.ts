// The chat envelope: written by the hub, read leniently from whatever MQTT clients send.
import t from 'tap'
import { decodeChatPayload, encodeEnvelope, type ChatEnvelope } from '../../../../src/core/topics/envelope.js'

const fallback = { from: 'sensor-7', ts: 1763766000000, via: 'mqtt' } as const
const decode = (payload: string | Buffer): ChatEnvelope =>
  decodeChatPayload(typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload, fallback)

t.test('encode writes exactly from, text, ts, via as UTF-8 JSON', async (t) => {
  const buf = encodeEnvelope({ from: 'alice', text: 'héllo ✓ 温度', ts: 1763766000001, via: 'ws' })
  t.ok(Buffer.isBuffer(buf))
  t.same(JSON.parse(buf.toString('utf8')), { from: 'alice', text: 'héllo ✓ 温度', ts: 1763766000001, via: 'ws' })
  t.equal(buf.toString('utf8'), '{"from":"alice","text":"héllo ✓ 温度","ts":1763766000001,"via":"ws"}', 'key order of the contract')
  const extra = { from: 'a', text: 'b', ts: 1, via: 'http', evil: true } as unknown as ChatEnvelope
  t.same(Object.keys(JSON.parse(encodeEnvelope(extra).toString())), ['from', 'text', 'ts', 'via'], 'no stray keys')
})

t.test('encode then decode round-trips', async (t) => {
  for (const text of ['hi', '', '{"text":"nested"}', 'line1\nline2', '"quoted"', '😀']) {
    const env = { from: 'bob', text, ts: 42, via: 'ws' }
    t.same(decode(encodeEnvelope(env)), env, `text ${JSON.stringify(text)}`)
  }
})

t.test('a JSON object with a string text is an envelope', async (t) => {
  t.same(decode('{"from":"carol","text":"yo","ts":5,"via":"http"}'), { from: 'carol', text: 'yo', ts: 5, via: 'http' })
  t.same(decode('{"text":"only text"}'), { ...fallback, text: 'only text' }, 'missing fields come from the sender')
  t.same(decode('{"text":"t","from":"","via":"","ts":"5"}'), { ...fallback, text: 't' }, 'empty or mistyped fields fall back')
  t.same(decode('{"text":"t","ts":1e400}'), { ...fallback, text: 't' }, 'a non-finite ts falls back')
  t.same(decode('{"text":"t","from":42}'), { ...fallback, text: 't' }, 'a numeric from falls back')
  t.same(decode('{"text":"t","extra":[1,2]}'), { ...fallback, text: 't' }, 'unknown keys are ignored')
})

t.test('any other payload is the text itself, from the sender', async (t) => {
  const plain = ['hello', '', '42', '"a string"', '[1,2]', 'null', '{"msg":"no text key"}', '{"text":7}',
    '{"text":null}', '{not json', '{']
  for (const p of plain) t.same(decode(p), { ...fallback, text: p }, `payload ${JSON.stringify(p)}`)
})

t.test('never throws, whatever the bytes', async (t) => {
  const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0xc3, 0x28])
  const env = decode(bytes)
  t.equal(env.from, fallback.from)
  t.type(env.text, 'string')
})
