/**
 * The chat envelope: `{"from","text","ts","via"}` as UTF-8 JSON on `chat/<room>`.
 * The hub writes it; what MQTT clients publish on chat topics is read leniently.
 */
export type { Via } from '../types.js'
import type { Via } from '../types.js'
import { jsonTooDeep } from '../json-guard.js'

export interface ChatEnvelope {
  readonly from: string
  readonly text: string
  readonly ts: number
  readonly via: Via | string
}

/** Encodes an envelope as the payload of a chat publish. */
export function encodeEnvelope (env: ChatEnvelope): Buffer {
  return Buffer.from(JSON.stringify({ from: env.from, text: env.text, ts: env.ts, via: env.via }), 'utf8')
}

/**
 * Reads a chat payload. A JSON object with a string `text` is an envelope (missing
 * fields come from `fallback`); any other payload is the text itself, sent by the
 * fallback sender. Never throws: a chat topic accepts every payload.
 */
export function decodeChatPayload (payload: Buffer, fallback: Omit<ChatEnvelope, 'text'>): ChatEnvelope {
  const text = payload.toString('utf8')
  // A deeply nested payload is not an envelope, and parsing it would stall the loop.
  if (text.charCodeAt(0) === 123 /* { */ && !jsonTooDeep(text)) {
    try {
      const obj: unknown = JSON.parse(text)
      if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
        const o = obj as Record<string, unknown>
        if (typeof o.text === 'string') {
          return {
            text: o.text,
            from: typeof o.from === 'string' && o.from.length > 0 ? o.from : fallback.from,
            ts: typeof o.ts === 'number' && Number.isFinite(o.ts) ? o.ts : fallback.ts,
            via: typeof o.via === 'string' && o.via.length > 0 ? o.via : fallback.via
          }
        }
      }
    } catch {
      // not JSON: the payload is the text
    }
  }
  return { text, from: fallback.from, ts: fallback.ts, via: fallback.via }
}
