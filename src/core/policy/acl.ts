import { FusionError } from '../errors.js'

import type { Identity } from '../types.js'

export type { Door, Identity } from '../types.js'

/**
 * The publish/subscribe policy. Every door calls these two functions: the Aedes
 * hooks for MQTT/TCP and MQTT/WS, the hub and the HTTP API directly (their
 * `broker.publish`/`broker.subscribe` bypass Aedes's hooks).
 */
export interface Acl {
  /** Throws ACL_DENIED when `who` may not publish on `topic`. */
  checkPublish (who: Identity, topic: string): void
  /** Throws ACL_DENIED when `who` may not subscribe to `filter`. */
  checkSubscribe (who: Identity, filter: string): void
  /**
   * The same decision as the two checks, with what decided it (`mqtt-fusion acl check`,
   * `GET /api/acl/explain`). Optional: an ACL passed in by an embedder may not explain.
   */
  explain? (who: ExplainWho, access: 'read' | 'write', target: string): AclDecision
}

/** Who a decision is explained for; a client id left out matches no `%c` pattern. */
export interface ExplainWho {
  readonly username?: string | undefined
  readonly clientId?: string | undefined
}

/** An ACL's answer and its reason: the rule of a file, a built-in rule, or the default. */
export interface AclDecision {
  readonly allowed: boolean
  /** `rule`: a line of the rules file; `builtin`: a reserved-topic rule; `default`: no rule matched. */
  readonly by: 'rule' | 'builtin' | 'default'
  /** For `rule`: where it is and what it says, as written. */
  readonly rule?: { readonly file: string, readonly line: number, readonly text: string, readonly section: string } | undefined
  /** One sentence a person reads. */
  readonly detail: string
}

/** Why a publish on `topic` by `clientId` breaks a reserved-topic rule, or undefined. */
export function reservedPublishReason (clientId: string, topic: string): string | undefined {
  if (topic.charCodeAt(0) === 36 /* $ */) return '$ topics belong to the broker: nobody publishes there'
  if (topic.startsWith('presence/') && topic !== `presence/${clientId}`) {
    return 'presence/<clientId> belongs to that client'
  }
  return undefined
}

/**
 * Rules that hold whatever the rules file says: `$...` topics belong to the broker
 * (nobody can fake `$SYS` figures), and `presence/<id>` may only be written by the client
 * `<id>` itself (its will, typically), so nobody can mark someone else offline.
 */
export function checkReservedPublish (who: Identity, topic: string): void {
  const why = reservedPublishReason(who.clientId, topic)
  if (why === undefined) return
  throw new FusionError('ACL_DENIED', topic.charCodeAt(0) === 36 ? `publish to ${topic} is not allowed` : `publish to ${topic} is not allowed: ${why}`)
}

/**
 * The default policy with no rules file: anyone may use every topic, within the
 * reserved-topic rules above.
 */
export function createDefaultAcl (): Acl {
  return {
    checkPublish: checkReservedPublish,
    checkSubscribe () {},
    explain (who, access, target) {
      const why = access === 'write' ? reservedPublishReason(who.clientId ?? '', target) : undefined
      if (why !== undefined) return { allowed: false, by: 'builtin', detail: `built-in rule: ${why}` }
      return { allowed: true, by: 'default', detail: 'no --acl file: every topic is open (within the built-in rules)' }
    }
  }
}
