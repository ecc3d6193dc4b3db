/**
 * The one catalogue of error codes. Every door reports a problem by one of these
 * codes; the HTTP status, the WebSocket close code and the wire code come from here.
 * Keep docs/errors.md in step: test/unit/errors.test.ts ties the two together.
 */

/** WebSocket close codes we send (RFC 6455 section 7.4.1). */
export const WS_CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  TRY_AGAIN_LATER: 1013
} as const

interface CodeInfo {
  /** HTTP status for the REST API. */
  readonly status: number
  /** Close code when the problem ends a WebSocket; undefined when the socket stays open. */
  readonly close?: number
  /** A short sentence for documentation. */
  readonly doc: string
}

export const ERROR_CODES = {
  BAD_JSON: { status: 400, doc: 'a frame or body starts with { but is not valid JSON' },
  BAD_FRAME: { status: 400, doc: 'unknown type, missing or mistyped field' },
  BAD_TOPIC: { status: 400, doc: 'topic or filter breaks the MQTT 3.1.1 rules' },
  ACL_DENIED: { status: 403, doc: 'the policy forbids this publish or subscribe' },
  TOO_LARGE: { status: 413, doc: 'payload over the configured limit' },
  RATE_LIMITED: { status: 429, doc: 'the client sends faster than its allowance' },
  LIMIT_EXCEEDED: { status: 400, doc: 'a per-client limit other than rate: subscriptions, topic length or depth' },
  NOT_AUTHORIZED: { status: 401, close: WS_CLOSE.POLICY, doc: 'auth is on and the token is missing, expired or forged' },
  NOT_FOUND: { status: 404, doc: 'no such route or resource' },
  STORE_FAILED: { status: 503, doc: 'the message could not be stored; it was not accepted' },
  STORE_FULL: { status: 507, doc: 'a cap on stored state is reached (retained messages: count or bytes); the message was not accepted' },
  SHUTTING_DOWN: { status: 503, close: WS_CLOSE.GOING_AWAY, doc: 'the gateway is closing' },
  BAD_OPTION: { status: 400, doc: 'a command-line option, environment variable or config key has a bad value' },
  PORT_IN_USE: { status: 500, doc: 'a door could not listen on its port' },
  STORE_LOCKED: { status: 500, doc: 'the data directory is in use by another gateway' },
  STORE_UNUSABLE: { status: 500, doc: 'the data directory cannot be created, written or opened' },
  UNTESTED_LIBRARY: { status: 500, doc: 'an installed library whose internals the engine patches is not the version the patches were written for' },
  INTERNAL: { status: 500, doc: 'an unexpected failure; the client sees only this code, the log keeps the cause' }
} as const satisfies Record<string, CodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

/** An error with a stable code; clients see the code and message, logs keep the cause. */
export class FusionError extends Error {
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FusionError'
    this.code = code
  }

  get status (): number { return ERROR_CODES[this.code].status }
}

/** True for a FusionError (or anything carrying one of our codes). */
export function isFusionError (err: unknown): err is FusionError {
  return err instanceof FusionError
}
