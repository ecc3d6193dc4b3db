import type { Door, Via } from './types.js'

/**
 * Where a message came from and when. MQTT 3.1.1 has no user properties, so the
 * gateway carries this in the packet's `properties` object: Aedes keeps it through
 * routing, persistence and Redis, and never writes it to a 3.1.1 client.
 * Only the gateway sets it (a 3.1.1 PUBLISH cannot carry properties).
 */
export interface Origin {
  readonly ts: number
  readonly via: Via
  /** Display name: a /ws name, else the MQTT username or client id. */
  readonly from: string
  readonly clientId: string
  /**
   * The message's number in the shared history log, where the accepting node numbers
   * it (several nodes on Redis); absent on one node, which numbers on delivery.
   */
  readonly seq?: number | undefined
  /** The door it came by; with `user`, what a will published after a restart is admitted as. */
  readonly door?: Door | undefined
  /** The user the sender proved (auth on). */
  readonly user?: string | undefined
}

const PREFIX = 'fusion-'
const DOORS: readonly string[] = ['mqtt', 'mqtt-ws', 'ws', 'http']

/** The user property that carries `Origin.seq`. */
export const SEQ_PROPERTY = `${PREFIX}seq`

interface Stampable { properties?: { userProperties?: Record<string, string | string[]> } | undefined }

export function stampOrigin (packet: Stampable, origin: Origin): void {
  // Literal keys and no spreads: this runs once per message, and an object built this way
  // gets one hidden class (computed keys and spreads made a dictionary each time).
  const up: Record<string, string> = {
    'fusion-ts': String(origin.ts),
    'fusion-via': origin.via,
    'fusion-from': origin.from,
    'fusion-cid': origin.clientId
  }
  if (origin.seq !== undefined) up['fusion-seq'] = String(origin.seq)
  if (origin.door !== undefined) up['fusion-door'] = origin.door
  if (origin.user !== undefined) up['fusion-user'] = origin.user
  packet.properties = { userProperties: up }
}

/** The origin stamped on a packet, or undefined (a broker-made packet such as $SYS). */
export function readOrigin (packet: Stampable): Origin | undefined {
  const up = packet.properties?.userProperties
  if (!up) return undefined
  const ts = Number(up[`${PREFIX}ts`])
  const via = up[`${PREFIX}via`]
  const from = up[`${PREFIX}from`]
  const clientId = up[`${PREFIX}cid`]
  if (!Number.isFinite(ts) || typeof via !== 'string' || typeof from !== 'string' || typeof clientId !== 'string') return undefined
  const seq = typeof up[SEQ_PROPERTY] === 'string' ? Number(up[SEQ_PROPERTY]) : NaN
  const door = up[`${PREFIX}door`]
  const user = up[`${PREFIX}user`]
  return {
    ts,
    via: via as Via,
    from,
    clientId,
    ...(Number.isSafeInteger(seq) && seq > 0 ? { seq } : {}),
    ...(typeof door === 'string' && DOORS.includes(door as Door) ? { door: door as Door } : {}),
    ...(typeof user === 'string' ? { user } : {})
  }
}
