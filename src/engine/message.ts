import type { HistoryRecord } from '../core/history/history-log.js'
import { decodeChatPayload } from '../core/topics/envelope.js'
import { chatRoomOf } from '../core/topics/topic-rules.js'
import { readOrigin } from '../core/origin.js'
import { cleanName } from '../core/admit.js'

/** What the hub and the history need of one publish, decoded once and shared by every recipient. */
export interface FusionMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1 | 2
  /** True only when replayed from the retained store to a new subscriber. */
  readonly retain: boolean
  /** Chat text for chat topics; the UTF-8 payload elsewhere; base64 when `encoding` says so. */
  readonly text: string
  readonly encoding: 'base64' | undefined
  readonly isChat: boolean
  readonly from: string
  readonly via: string
  readonly ts: number
  readonly clientId: string | undefined
  /** Sequence in the history log, for logged topics. */
  seq: number | undefined
  /** Settles once the history log holds it (logged topics only). */
  stored: Promise<void> | undefined
  /** The packet's origin stamp: what the door latency histogram follows (door-latency.ts). */
  readonly stamp?: object | undefined
  /** The `message` frame, serialised once for every recipient. */
  json (): string
  /** The `name: text` line of format=text clients (chat topics only). */
  line (): string
  /** The form the history log keeps. */
  record (): Omit<HistoryRecord, 'seq'>
}

export interface RawPacket {
  topic: string
  payload: Buffer | string
  qos?: number
  retain?: boolean
  clientId?: string
  properties?: { userProperties?: Record<string, string | string[]> } | undefined
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

function utf8OrUndefined (buf: Buffer): string | undefined {
  try {
    return utf8Decoder.decode(buf)
  } catch {
    return undefined
  }
}

/** Decodes a broker packet into a FusionMessage (no caching here; see MessageCache). */
export function decodePacket (packet: RawPacket, { retained = false } = {}): FusionMessage {
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload, 'utf8') : packet.payload
  const origin = readOrigin(packet)
  const clientId = origin?.clientId ?? packet.clientId
  const base = {
    from: origin?.from ?? clientId ?? 'broker',
    via: origin?.via ?? 'mqtt',
    ts: origin?.ts ?? Date.now()
  }
  const isChat = chatRoomOf(packet.topic) !== undefined
  let text: string
  let encoding: 'base64' | undefined
  let from = base.from
  let via: string = base.via
  let ts = base.ts
  const asText = utf8OrUndefined(payload)
  let claimedFrom: string | undefined
  if (isChat && asText !== undefined) {
    const env = decodeChatPayload(payload, base)
    text = env.text
    if (origin) {
      // `from`, `via` and `ts` are the gateway's, stamped by `admit` from the proved
      // identity, the door and its clock; a different sender written in the envelope is
      // shown only as what it is, a claim.
      const claim = cleanName(env.from)
      if (claim !== undefined && claim !== from) claimedFrom = claim
    } else {
      from = cleanName(env.from) ?? base.from
      via = env.via
      ts = env.ts
    }
  } else if (asText !== undefined) {
    text = asText
  } else {
    text = payload.toString('base64')
    encoding = 'base64'
  }
  const qos = (packet.qos ?? 0) as 0 | 1 | 2
  let json: string | undefined
  let line: string | undefined
  const msg: FusionMessage = {
    topic: packet.topic,
    payload,
    qos,
    retain: retained,
    text,
    encoding,
    isChat,
    from,
    via,
    ts,
    clientId,
    seq: undefined,
    stored: undefined,
    stamp: packet.properties,
    json () {
      json ??= JSON.stringify({
        type: 'message',
        topic: msg.topic,
        payload: text,
        ...(encoding ? { encoding } : {}),
        from,
        ...(claimedFrom !== undefined ? { claimedFrom } : {}),
        via,
        ts,
        qos,
        retain: retained,
        ...(msg.seq !== undefined ? { seq: msg.seq } : {}),
        ...(clientId !== undefined ? { clientId } : {})
      })
      return json
    },
    line () {
      // One line per message: a newline inside the text would forge a second sender.
      line ??= `${from}: ${text.replace(/[\r\n]+/g, ' ')}`
      return line
    },
    record () {
      return { topic: msg.topic, payload: text, ...(encoding ? { encoding } : {}), from, via, ts, ...(claimedFrom !== undefined ? { claimedFrom } : {}) }
    }
  }
  return msg
}
