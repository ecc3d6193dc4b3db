/**
 * The shared vocabulary of every room (core, engine, doors), declared once here. A type
 * that two rooms need lives here, never in one of them.
 */

/** The door a client came in by. */
export type Door = 'mqtt' | 'mqtt-ws' | 'ws' | 'http'

/** Which kind of door a message came by, as `via` in envelopes, frames and history. */
export type Via = 'ws' | 'mqtt' | 'http' | 'bridge'

/** Who is asking: the same shape for every door. */
export interface Identity {
  readonly clientId: string
  /** Set only when the user proved it (auth on); a name a client merely claims is not here. */
  readonly username?: string | undefined
  readonly door: Door
}

/** The one log function type: the CLI prints, tests collect, embedding apps forward. */
export type LogFn = (level: 'info' | 'warn' | 'error', msg: string, err?: unknown) => void

/** A rate gate's answer: within the rate, over it (drop and say so), or over it for too long (cut). */
export type RateVerdict = 'ok' | 'limited' | 'cut'

/** One client's message-rate allowance. */
export interface RateGate {
  take (): RateVerdict
}

/** Makes one RateGate per client. */
export type RateGateFactory = () => RateGate

/** One stored message, as the `history` frame and `GET /api/history` show it. */
export interface HistoryRecord {
  readonly seq: number
  readonly topic: string
  /** The chat text for chat topics, else the payload (base64 when `encoding` says so). */
  readonly payload: string
  readonly encoding?: 'base64'
  readonly from: string
  readonly via: string
  readonly ts: number
  /** A sender name the client wrote in its chat envelope that differs from the proved `from`. */
  readonly claimedFrom?: string
}

/** Map a door to the `via` it shows as. */
export function viaOf (door: Door): Via {
  return door === 'mqtt-ws' ? 'mqtt' : door
}
