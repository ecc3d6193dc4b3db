import type { HistoryRecord } from '../types.js'

/** A record before the log numbers it. */
export type NewHistoryRecord = Omit<HistoryRecord, 'seq'>

/**
 * What the hub, the HTTP API and the bridge need of a history log. Two logs implement
 * it: the embedded one (LevelDB or memory, one node) and the Redis one (several nodes
 * sharing one log).
 *
 * They differ in where a message is numbered. One node numbers a logged message where
 * it is delivered: the only process that sees it. Several nodes cannot do that (each
 * would append the same message), so there the node that accepts a publish numbers and
 * stores it before it is routed, and stamps the number on the packet; every node then
 * reads the number from the stamp (`numbersAtIngress`).
 */
export interface HistoryStore {
  /** True where the accepting node numbers each message and deliveries carry the number. */
  readonly numbersAtIngress: boolean
  /**
   * Numbers and stores one record where it is delivered: the number at once, `stored`
   * once kept. Only for a log that does not number at ingress.
   */
  append (record: NewHistoryRecord): { seq: number, stored: Promise<void> }
  /** A delivered message numbered at ingress, so `lastSeq()` keeps up without a round trip. */
  noteDelivered (topic: string, seq: number): void
  /** The last `limit` records of `topic`, oldest first. */
  last (topic: string, limit: number): Promise<HistoryRecord[]>
  /** Records of `topic` after sequence `since`, oldest first, at most `limit`. */
  since (topic: string, since: number, limit: number): Promise<HistoryRecord[]>
  /** The highest sequence this node knows on `topic` (0 when none). */
  lastSeq (topic: string): number
  /** Resolves once everything appended so far is stored (or failed). */
  flushed (): Promise<void>
  /** Stores what is pending and refuses further appends; safe to call twice. */
  close (): Promise<void>
}
