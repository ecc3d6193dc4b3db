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
}

/**
 * Rules that hold whatever the rules file says: `$...` topics belong to the broker
 * (nobody can fake `$SYS` figures), and `presence/<id>` may only be written by the client
 * `<id>` itself (its will, typically), so nobody can mark someone else offline.
 */
export function checkReservedPublish (who: Identity, topic: string): void {
  if (topic.charCodeAt(0) === 36 /* $ */) {
    throw new FusionError('ACL_DENIED', `publish to ${topic} is not allowed`)
  }
  if (topic.startsWith('presence/') && topic !== `presence/${who.clientId}`) {
    throw new FusionError('ACL_DENIED', `publish to ${topic} is not allowed: presence/<clientId> belongs to that client`)
  }
}

/**
 * The default policy with no rules file: anyone may use every topic, within the
 * reserved-topic rules above.
 */
export function createDefaultAcl (): Acl {
  return {
    checkPublish: checkReservedPublish,
    checkSubscribe () {}
  }
}
