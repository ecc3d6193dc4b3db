import { FusionError } from '../../core/errors.js'
import { jsonTooDeep, MAX_JSON_DEPTH } from '../../core/json-guard.js'

/** A frame's `id`, echoed as sent: a string (at most 128 characters) or a finite number. */
export type FrameId = string | number

/** A frame from a /ws client, checked. */
export type ClientFrame =
  | { type: 'chat', text: string, room?: string | undefined, id?: FrameId | undefined }
  | { type: 'publish', topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, id?: FrameId | undefined }
  | { type: 'subscribe', topic: string, since?: number | undefined, id?: FrameId | undefined }
  | { type: 'unsubscribe', topic: string, id?: FrameId | undefined }
  | { type: 'ping', id?: FrameId | undefined }

/** A text frame that is not a JSON object: a chat line for the connection's room. */
export interface ChatLine { type: 'line', text: string }

/** The id of a frame, when it has a usable one, so an error can still answer it. */
export function frameId (obj: unknown): FrameId | undefined {
  if (obj === null || typeof obj !== 'object') return undefined
  const id = (obj as Record<string, unknown>).id
  if (typeof id === 'string' && id.length <= 128) return id
  if (typeof id === 'number' && Number.isFinite(id)) return id
  return undefined
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * `text` without its trailing CR and LF characters. A loop from the end, not
 * `/[\r\n]+$/`: that regex is tried at every start position and scans each run of
 * newlines to its end, so a frame of newlines followed by one other character costs
 * O(n²) (80 KB took 11 s; a frame at the default limit would take minutes).
 */
export function trimLineEnd (text: string): string {
  let end = text.length
  while (end > 0) {
    const c = text.charCodeAt(end - 1)
    if (c !== 10 && c !== 13) break
    end--
  }
  return end === text.length ? text : text.slice(0, end)
}

/**
 * Parses one text frame. Throws FusionError BAD_JSON or BAD_FRAME (with `.frameId`
 * when the frame had one). Topic rules are checked later, by the shared topic module.
 */
export function parseClientFrame (text: string): ClientFrame | ChatLine {
  const trimmed = text.trimStart()
  if (trimmed.charCodeAt(0) !== 123 /* { */) {
    return { type: 'line', text: trimLineEnd(text) }
  }
  // Deep nesting is the one shape JSON.parse is slow on (json-guard.ts).
  if (jsonTooDeep(trimmed)) throw new FusionError('BAD_FRAME', `a frame nests objects or arrays more than ${MAX_JSON_DEPTH} deep`)
  let obj: unknown
  try {
    obj = JSON.parse(trimmed)
  } catch {
    throw new FusionError('BAD_JSON', 'the frame starts with { but is not valid JSON')
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new FusionError('BAD_FRAME', 'a JSON frame must be an object')
  }
  const o = obj as Record<string, unknown>
  const id = frameId(o)
  const fail = (message: string): never => { throw Object.assign(new FusionError('BAD_FRAME', message), { frameId: id }) }
  if (o.id !== undefined && id === undefined) fail('id must be a string of at most 128 characters or a number')
  const str = (key: string): string => {
    const v = o[key]
    if (typeof v !== 'string') fail(`${String(o.type)}.${key} must be a string`)
    return v as string
  }
  switch (o.type) {
    case 'chat': {
      const text = str('text')
      const room = o.room === undefined ? undefined : str('room')
      if (room !== undefined && room.length === 0) fail('chat.room must not be empty')
      return { type: 'chat', text, room, id }
    }
    case 'publish': {
      const topic = str('topic')
      const raw = str('payload')
      let payload: Buffer
      if (o.encoding === undefined || o.encoding === 'utf8' || o.encoding === 'utf-8') {
        payload = Buffer.from(raw, 'utf8')
      } else if (o.encoding === 'base64') {
        if (!BASE64.test(raw) || raw.length % 4 === 1) fail('publish.payload is not valid base64')
        payload = Buffer.from(raw, 'base64')
      } else {
        return fail('publish.encoding must be "base64" or left out')
      }
      const qos = o.qos === undefined ? 0 : o.qos
      if (qos !== 0 && qos !== 1) fail('publish.qos must be 0 or 1')
      const retain = o.retain === undefined ? false : o.retain
      if (typeof retain !== 'boolean') fail('publish.retain must be true or false')
      return { type: 'publish', topic, payload, qos: qos as 0 | 1, retain: retain as boolean, id }
    }
    case 'subscribe': {
      const topic = str('topic')
      const since = o.since
      if (since !== undefined && (typeof since !== 'number' || !Number.isInteger(since) || since < 0)) fail('subscribe.since must be a whole number >= 0')
      return { type: 'subscribe', topic, since: since as number | undefined, id }
    }
    case 'unsubscribe':
      return { type: 'unsubscribe', topic: str('topic'), id }
    case 'ping':
      return { type: 'ping', id }
    case undefined:
      return fail('the frame has no type')
    default:
      return fail(`unknown frame type ${JSON.stringify(o.type).slice(0, 40)}`)
  }
}
