import { FusionError } from './errors.js'
import type { Acl } from './policy/acl.js'
import type { Origin } from './origin.js'
import type { Stats } from './stats.js'
import { encodeEnvelope } from './topics/envelope.js'
import { chatRoomOf, checkTopicName, type TopicLimits } from './topics/topic-rules.js'
import { viaOf, type Identity, type RateGate } from './types.js'

/**
 * Every way a message can enter the topic space. `admit` sees each of them; the test
 * test/unit/core/admit.test.ts enumerates them and proves it.
 */
export const SOURCES = [
  'mqtt-publish', // a PUBLISH on MQTT/TCP, MQTT/TLS or MQTT/WS
  'mqtt-will', // a will: checked at CONNECT, admitted again when the client dies
  'stored-will', // a will Aedes publishes later from its store (after kill -9, or a dead cluster peer's)
  'ws-chat', // a /ws chat frame or chat line
  'ws-publish', // a /ws publish frame
  'http-publish', // POST /api/publish
  'bridge-in' // a message from an upstream broker (engine/upstream), as the ACL user bridge:<name>
] as const

export type Source = typeof SOURCES[number]

/** A message as a door hands it in, before anything is believed. */
export interface Submission {
  readonly source: Source
  /** Who sent it, as the door proved it (never what the client claims). */
  readonly who: Identity
  /** The name the door knows the sender by: a /ws name, an MQTT username or client id. Cleaned here. */
  readonly name: string
  readonly topic: unknown
  readonly payload: Buffer
  /**
   * True when the payload is chat text the gateway must wrap in the envelope
   * (/ws chat and publish, HTTP): `from`, `via` and `ts` are then the gateway's own.
   */
  readonly wrapChat?: boolean
  /** The sender's rate gate, for doors that do not gate every frame themselves. */
  readonly rate?: RateGate | undefined
}

/** What may enter: the checked topic, the payload to publish and the origin to stamp on it. */
export interface Admitted {
  readonly topic: string
  readonly payload: Buffer
  readonly origin: Origin
}

export interface AdmitDeps {
  readonly acl: Acl
  readonly stats: Stats
  readonly limits: TopicLimits & { readonly maxPayload: number }
  readonly now?: () => number
}

/** The one admission path; throws a FusionError (already counted) to refuse. */
export interface Admit {
  (sub: Submission): Admitted
  /**
   * The same checks without the rate gate, the stamp or the count: for a will at CONNECT,
   * which is only a promise to publish later (it is admitted again then).
   */
  check (sub: Submission): void
}

const MAX_NAME = 64
// Control characters (C0, DEL, C1) in a name would let one client forge lines on
// format=text screens and garble presence lists and logs ([MQTT-1.5.3] allows them in
// strings, so they have to be taken out here).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g

/** A display name without control characters, trimmed to 64 characters; undefined when nothing is left. */
export function cleanName (raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined
  // Every message passes its sender's name through here: a name already clean (the usual
  // case) is recognised without building a new string.
  if (raw.length > 0 && raw.length <= MAX_NAME && !NOT_CLEAN.test(raw)) return raw
  const name = raw.replace(CONTROL, '').trim().slice(0, MAX_NAME)
  return name.length ? name : undefined
}

// A control character anywhere, or white space at either end (what trim() would remove).
const NOT_CLEAN = /[\u0000-\u001f\u007f-\u009f]|^\s|\s$/

const COUNTED = Symbol('fusion.counted')

/** True when `admit` already counted this refusal in the drop counters. */
export function isCounted (err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { [COUNTED]?: boolean })[COUNTED] === true
}

/**
 * Builds `admit`: topic rules -> ACL -> size -> rate -> stamp the origin from the proved
 * identity, the door and the gateway's clock -> count. Every door calls it, so a rule
 * changed here changes for all of them.
 */
export function createAdmit (deps: AdmitDeps): Admit {
  const { acl, stats, limits } = deps
  const now = deps.now ?? Date.now

  const refuse = (err: FusionError, reason: 'badInput' | 'aclDenied' | 'tooLarge' | 'rateLimited'): never => {
    stats.dropped[reason]++
    ;(err as unknown as { [COUNTED]: boolean })[COUNTED] = true
    throw err
  }

  const checks = (sub: Submission, ts: number): { topic: string, payload: Buffer, from: string } => {
    let topic: string
    try {
      // [MQTT-3.3.2-2] no wildcards in a topic name, [MQTT-4.7.3-2] no U+0000.
      topic = checkTopicName(sub.topic, limits)
    } catch (err) {
      return refuse(err as FusionError, 'badInput')
    }
    try {
      acl.checkPublish(sub.who, topic)
    } catch (err) {
      return refuse(err as FusionError, 'aclDenied')
    }
    const from = cleanName(sub.name) ?? sub.who.clientId
    // The envelope is larger than its text: a text over the limit is refused before it is
    // encoded (a /ws frame at its limit would otherwise cost a megabyte of JSON first).
    if (sub.payload.length > limits.maxPayload) {
      refuse(new FusionError('TOO_LARGE', `payload is ${sub.payload.length} bytes; the limit is ${limits.maxPayload}`), 'tooLarge')
    }
    const payload = sub.wrapChat === true && chatRoomOf(topic) !== undefined
      ? encodeEnvelope({ from, text: sub.payload.toString('utf8'), ts, via: viaOf(sub.who.door) })
      : sub.payload
    if (payload.length > limits.maxPayload) {
      refuse(new FusionError('TOO_LARGE', `payload is ${payload.length} bytes; the limit is ${limits.maxPayload}`), 'tooLarge')
    }
    return { topic, payload, from }
  }

  const admit = ((sub: Submission): Admitted => {
    const ts = now()
    const { topic, payload, from } = checks(sub, ts)
    if (sub.rate !== undefined && sub.rate.take() !== 'ok') {
      refuse(new FusionError('RATE_LIMITED', 'over the message rate'), 'rateLimited')
    }
    stats.admitted[sub.source]++
    const origin: Origin = sub.who.username !== undefined
      ? { ts, via: viaOf(sub.who.door), from, clientId: sub.who.clientId, door: sub.who.door, user: sub.who.username }
      : { ts, via: viaOf(sub.who.door), from, clientId: sub.who.clientId, door: sub.who.door }
    return { topic, payload, origin }
  }) as Admit
  admit.check = (sub) => { checks(sub, now()) }
  return admit
}
