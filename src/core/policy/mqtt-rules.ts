/**
 * MQTT 3.1.1 rules Aedes 1.2 is lax about at CONNECT, checked by the broker hooks.
 * Each check cites the statement of the specification it enforces.
 */

/**
 * Longest client id accepted, in UTF-8 bytes. [MQTT-3.1.3-5] lets a server accept
 * longer ids than 23 characters; an id is kept in every session record and presence
 * topic, so a megabyte id must not be.
 */
export const MAX_CLIENT_ID_BYTES = 256

// Control characters would garble presence lists and logs.
const CONTROL = /[\u0000-\u001f\u007f]/
// Ids the gateway gives its own clients: an MQTT client taking one could write that
// client's presence/<id> and take over its name.
// bridge:<name> marks what came in over an upstream link (it never goes back out over it).
const RESERVED_ID = /^(ws-[0-9a-f]{8}|http-.*|bridge:.*)$/

/** What the CONNECT checks need of the packet. */
export interface ConnectFacts {
  readonly clientId: string
  readonly clean?: boolean | undefined
  readonly username?: string | undefined
  readonly will?: { readonly topic?: string | undefined } | null | undefined
}

/**
 * A reason to close the connection without a CONNACK, or undefined. Run before anything
 * else happens for the CONNECT.
 */
export function connectCloseReason (p: ConnectFacts): string | undefined {
  // [MQTT-1.5.3-2] a UTF-8 string must not include U+0000; a receiver that gets one
  // MUST close the network connection.
  if (p.clientId.includes('\u0000') || (p.username ?? '').includes('\u0000')) return 'NUL in a CONNECT string'
  const willTopic = p.will?.topic
  if (willTopic !== undefined && willTopic !== null) {
    if (willTopic.includes('\u0000')) return 'NUL in the will topic'
    // [MQTT-3.1.3-11] the will topic is a topic name; [MQTT-3.3.2-2] a topic name has
    // no wildcards, and [MQTT-4.7.3-1] is at least one character long.
    if (willTopic.length === 0 || willTopic.includes('+') || willTopic.includes('#')) return 'the will topic is not a valid topic name'
  }
  return undefined
}

/**
 * A reason to answer CONNACK 2 (identifier rejected) and close, or undefined.
 * `rawId` is the client id as sent (Aedes replaces an empty one with its own).
 */
export function clientIdProblem (rawId: string, clean: boolean): string | undefined {
  // [MQTT-3.1.3-8] a zero-byte ClientId with CleanSession 0: CONNACK 0x02, then close.
  // ([MQTT-3.1.3-7]: a client sending a zero-byte ClientId MUST set CleanSession to 1.)
  if (rawId.length === 0) return clean ? undefined : 'an empty client id needs a clean session'
  if (Buffer.byteLength(rawId, 'utf8') > MAX_CLIENT_ID_BYTES) return `a client id is at most ${MAX_CLIENT_ID_BYTES} bytes`
  if (CONTROL.test(rawId)) return 'a client id must not contain control characters'
  if (RESERVED_ID.test(rawId)) return 'client ids ws-xxxxxxxx, http-... and bridge:... belong to the gateway\'s own clients'
  return undefined
}
