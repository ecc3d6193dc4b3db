import type { IncomingMessage } from 'node:http'
import { FusionError } from '../../core/errors.js'
import { cleanName } from '../../core/admit.js'
import type { Acl } from '../../core/policy/acl.js'
import { cookieValue } from '../../core/policy/auth.js'
import { chatTopic, checkTopicName, type TopicLimits } from '../../core/topics/topic-rules.js'
import type { Identity } from '../../core/types.js'
import type { Format } from './session.js'

const MAX_ROOM = 128

/** What a /ws connection asked for and proved, before it becomes a session. */
export interface JoinRequest {
  readonly clientId: string
  readonly user: string | undefined
  readonly name: string
  readonly room: string
  readonly format: Format
  /** The client wants presence frames and may read `presence/#`. */
  readonly presence: boolean
  /** `?presence=batch`: presence as `presence-batch` frames (PROTOCOL.md). */
  readonly presenceBatch: boolean
  /** `?since=`: the history sequence to replay the room from. */
  readonly since: number | undefined
}

export interface JoinDeps {
  readonly acl: Acl
  readonly limits: TopicLimits
  /** With auth on: the user a connection's token proves, or why it does not. */
  readonly identify?: ((req: IncomingMessage) => string | FusionError) | undefined
  /** A display name nobody online has, for a client that did not give one. */
  readonly guestName: () => string
}

/**
 * Admission of a /ws connection: who it is (the token, with auth on), what it is called,
 * which room it joins and whether the ACL lets it. Throws the FusionError the client is
 * told before the 1008 close.
 */
export function readJoin (req: IncomingMessage, clientId: string, deps: JoinDeps): JoinRequest {
  const user = deps.identify?.(req)
  if (user instanceof FusionError) throw user
  const q = new URL(req.url ?? '/', 'http://localhost').searchParams
  // With auth on, a user is shown by the name they proved, never one they typed.
  const name = user ?? cleanName(q.get('name') ?? undefined) ??
    cleanName(cookieValue(req.headers.cookie, 'fusion_name')) ?? deps.guestName()
  const format: Format = q.get('format') === 'text' ? 'text' : 'json'
  const roomParam = (q.get('room') ?? '').trim().slice(0, MAX_ROOM)
  let room = roomParam.length ? roomParam : 'lobby'
  try { checkTopicName(chatTopic(room), deps.limits) } catch { room = 'lobby' }
  const who: Identity = { clientId, username: user, door: 'ws' }
  // Joining the room is a subscription: the same ACL as any other.
  deps.acl.checkSubscribe(who, chatTopic(room))
  const presenceParam = q.get('presence')
  const wantsPresence = presenceParam !== '0' && presenceParam !== 'off' && presenceParam !== 'false'
  const sinceParam = q.get('since')
  return {
    clientId,
    user,
    name,
    room,
    format,
    presence: wantsPresence && mayRead(deps.acl, who, 'presence/#'),
    presenceBatch: presenceParam === 'batch',
    since: sinceParam !== null && /^\d{1,16}$/.test(sinceParam) ? Number(sinceParam) : undefined
  }
}

/** True when the ACL lets `who` subscribe to `filter`. */
export function mayRead (acl: Acl, who: Identity, filter: string): boolean {
  try { acl.checkSubscribe(who, filter); return true } catch { return false }
}
