// Parsing what a /ws client sends: JSON frames, chat lines, and every way a frame is refused.
import t from 'tap'
import { FusionError } from '../../../../src/core/errors.js'
import { frameId, parseClientFrame } from '../../../../src/doors/ws-hub/frames.js'

/** The code and the echoed id of a refused frame. */
function refusal (text: string): { code: string, id: string | number | undefined, message: string } {
  try {
    parseClientFrame(text)
  } catch (err) {
    if (!(err instanceof FusionError)) throw err
    return { code: err.code, id: (err as { frameId?: string | number }).frameId, message: err.message }
  }
  throw new Error(`${text} was accepted`)
}

const j = (o: unknown): string => JSON.stringify(o)

t.test('every client frame type of PROTOCOL.md parses', async (t) => {
  t.same(parseClientFrame(j({ type: 'chat', text: 'hello', room: 'lobby', id: 'c1' })),
    { type: 'chat', text: 'hello', room: 'lobby', id: 'c1' })
  t.same(parseClientFrame(j({ type: 'chat', text: 'no room' })),
    { type: 'chat', text: 'no room', room: undefined, id: undefined }, 'room defaults to the connection (undefined here)')

  const pub = parseClientFrame(j({ type: 'publish', topic: 'sensors/k1/temp', payload: '21.5', qos: 0, retain: false, id: 'c2' }))
  t.match(pub, { type: 'publish', topic: 'sensors/k1/temp', qos: 0, retain: false, id: 'c2' })
  t.same((pub as { payload: Buffer }).payload, Buffer.from('21.5'), 'payload is the UTF-8 bytes')

  const defaults = parseClientFrame(j({ type: 'publish', topic: 'x', payload: '' }))
  t.match(defaults, { qos: 0, retain: false, id: undefined }, 'qos 0 and retain false by default')
  t.equal((defaults as { payload: Buffer }).payload.length, 0, 'an empty payload is allowed')

  t.match(parseClientFrame(j({ type: 'publish', topic: 'x', payload: 'p', qos: 1, retain: true })), { qos: 1, retain: true })
  t.same(parseClientFrame(j({ type: 'subscribe', topic: 'sensors/+/temp', id: 'c3' })),
    { type: 'subscribe', topic: 'sensors/+/temp', since: undefined, id: 'c3' })
  t.same(parseClientFrame(j({ type: 'subscribe', topic: 'chat/x', since: 12 })),
    { type: 'subscribe', topic: 'chat/x', since: 12, id: undefined })
  t.same(parseClientFrame(j({ type: 'unsubscribe', topic: 'sensors/+/temp', id: 'c4' })),
    { type: 'unsubscribe', topic: 'sensors/+/temp', id: 'c4' })
  t.same(parseClientFrame(j({ type: 'ping', id: 'c5' })), { type: 'ping', id: 'c5' })
  t.same(parseClientFrame(j({ type: 'ping' })), { type: 'ping', id: undefined })
})

t.test('publish payload encodings', async (t) => {
  const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x41, 0x0a])
  const b64 = parseClientFrame(j({ type: 'publish', topic: 'bin', payload: bytes.toString('base64'), encoding: 'base64' }))
  t.same((b64 as { payload: Buffer }).payload, bytes, 'base64 decodes byte for byte')
  const unpadded = parseClientFrame(j({ type: 'publish', topic: 'bin', payload: 'QUJD', encoding: 'base64' }))
  t.equal((unpadded as { payload: Buffer }).payload.toString(), 'ABC')
  for (const enc of ['utf8', 'utf-8']) {
    const p = parseClientFrame(j({ type: 'publish', topic: 't', payload: 'héllo', encoding: enc }))
    t.equal((p as { payload: Buffer }).payload.toString('utf8'), 'héllo', `encoding ${enc}`)
  }
  const utf8 = parseClientFrame(j({ type: 'publish', topic: 't', payload: '温度 ✓' }))
  t.equal((utf8 as { payload: Buffer }).payload.length, Buffer.byteLength('温度 ✓'), 'a string payload is its UTF-8 bytes')
})

t.test('a text frame that is not a JSON object is a chat line', async (t) => {
  const lines: Array<[string, string]> = [
    ['hello', 'hello'],
    ['hello\n', 'hello'],
    ['hello\r\n', 'hello'],
    ['two\nlines', 'two\nlines'],
    ['["not","an","object"]', '["not","an","object"]'],
    ['42', '42'],
    ['null', 'null'],
    ['"a json string"', '"a json string"'],
    ['', ''],
    ['   ', '   '],
    ['}{', '}{'],
    ['😀 emoji', '😀 emoji']
  ]
  for (const [input, text] of lines) t.same(parseClientFrame(input), { type: 'line', text }, `line ${JSON.stringify(input)}`)
})

t.test('leading whitespace before { still makes a JSON frame', async (t) => {
  t.same(parseClientFrame('  \n{"type":"ping","id":"w"}'), { type: 'ping', id: 'w' })
  t.equal(refusal('  {oops').code, 'BAD_JSON')
})

t.test('BAD_JSON: starts with { but does not parse', async (t) => {
  for (const text of ['{', '{bad json', '{"type":"ping"', '{"type":"ping",}', "{'type':'ping'}", '{"type":"ping"} trailing', '{}}']) {
    const r = refusal(text)
    t.equal(r.code, 'BAD_JSON', `${JSON.stringify(text)} -> BAD_JSON`)
    t.equal(r.id, undefined, 'no id can be read from broken JSON')
    t.ok(r.message.length > 0, 'with a message')
  }
})

t.test('BAD_FRAME: unknown type, missing or mistyped fields', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{}, /no type/],
    [{ id: 'x' }, /no type/],
    [{ type: 'nope' }, /unknown frame type/],
    [{ type: 'PING' }, /unknown frame type/],
    [{ type: 42 }, /unknown frame type/],
    [{ type: null }, /unknown frame type/],
    [{ type: 'chat' }, /chat\.text/],
    [{ type: 'chat', text: 5 }, /chat\.text/],
    [{ type: 'chat', text: null }, /chat\.text/],
    [{ type: 'chat', text: 'x', room: 5 }, /chat\.room/],
    [{ type: 'chat', text: 'x', room: '' }, /chat\.room/],
    [{ type: 'publish', payload: 'x' }, /publish\.topic/],
    [{ type: 'publish', topic: 5, payload: 'x' }, /publish\.topic/],
    [{ type: 'publish', topic: 'k/x' }, /publish\.payload/],
    [{ type: 'publish', topic: 'k/x', payload: 42 }, /publish\.payload/],
    [{ type: 'publish', topic: 'k/x', payload: { a: 1 } }, /publish\.payload/],
    [{ type: 'publish', topic: 'k/x', payload: 'x', qos: 2 }, /qos/],
    [{ type: 'publish', topic: 'k/x', payload: 'x', qos: '1' }, /qos/],
    [{ type: 'publish', topic: 'k/x', payload: 'x', qos: -1 }, /qos/],
    [{ type: 'publish', topic: 'k/x', payload: 'x', qos: null }, /qos/],
    [{ type: 'publish', topic: 'k/x', payload: 'x', retain: 'true' }, /retain/],
    [{ type: 'publish', topic: 'k/x', payload: 'x', retain: 1 }, /retain/],
    [{ type: 'publish', topic: 'k/x', payload: 'x', encoding: 'hex' }, /encoding/],
    [{ type: 'publish', topic: 'k/x', payload: 'x', encoding: 7 }, /encoding/],
    [{ type: 'publish', topic: 'k/x', payload: '!!!', encoding: 'base64' }, /base64/],
    [{ type: 'publish', topic: 'k/x', payload: 'A', encoding: 'base64' }, /base64/],
    [{ type: 'publish', topic: 'k/x', payload: 'AB=C', encoding: 'base64' }, /base64/],
    [{ type: 'subscribe' }, /subscribe\.topic/],
    [{ type: 'subscribe', topic: ['a'] }, /subscribe\.topic/],
    [{ type: 'subscribe', topic: 'a', since: -1 }, /since/],
    [{ type: 'subscribe', topic: 'a', since: 1.5 }, /since/],
    [{ type: 'subscribe', topic: 'a', since: '3' }, /since/],
    [{ type: 'unsubscribe' }, /unsubscribe\.topic/],
    [{ type: 'unsubscribe', topic: false }, /unsubscribe\.topic/],
    [{ type: 'ping', id: { nested: true } }, /id/],
    [{ type: 'ping', id: 'x'.repeat(129) }, /id/],
    [{ type: 'ping', id: true }, /id/]
  ]
  for (const [frame, why] of cases) {
    const r = refusal(j(frame))
    t.equal(r.code, 'BAD_FRAME', `${j(frame).slice(0, 60)} -> BAD_FRAME`)
    t.match(r.message, why, `and says why (${r.message})`)
  }
})

t.test('a refused frame still carries its id, so the error answers it', async (t) => {
  t.equal(refusal(j({ type: 'nope', id: 'n1' })).id, 'n1')
  t.equal(refusal(j({ type: 'publish', topic: 'k/x', payload: 42, id: 'c2' })).id, 'c2')
  t.equal(refusal(j({ type: 'subscribe', id: 'c3' })).id, 'c3')
  t.equal(refusal(j({ id: 'only-id' })).id, 'only-id')
  t.equal(refusal(j({ type: 'ping', id: 'x'.repeat(129) })).id, undefined, 'an unusable id is not echoed')
})

t.test('ids: strings up to 128 characters and numbers are echoed as sent', async (t) => {
  const long = 'i'.repeat(128)
  t.same(parseClientFrame(j({ type: 'ping', id: long })), { type: 'ping', id: long })
  t.same(parseClientFrame(j({ type: 'ping', id: '' })), { type: 'ping', id: '' }, 'an empty id is still an id')
  t.equal(frameId({ id: 'abc' }), 'abc')
  t.equal(frameId({ id: 17 }), 17, 'a number id is echoed as a number')
  t.same(parseClientFrame(j({ type: 'ping', id: 7 })), { type: 'ping', id: 7 })
  t.equal(refusal(j({ type: 'nope', id: 0 })).id as unknown, 0, 'a refused frame echoes a number id too (even 0)')
  t.equal(frameId({ id: Infinity }), undefined)
  t.equal(frameId({}), undefined)
  t.equal(frameId(null), undefined)
  t.equal(frameId('str'), undefined)
})

t.test('extra fields are ignored, not refused (forward compatibility)', async (t) => {
  t.same(parseClientFrame(j({ type: 'ping', id: 'p', future: { x: 1 } })), { type: 'ping', id: 'p' })
  t.match(parseClientFrame(j({ type: 'chat', text: 'x', mood: 'happy' })), { type: 'chat', text: 'x' })
})
