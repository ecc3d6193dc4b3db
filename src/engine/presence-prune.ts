import type { Stats } from '../core/stats.js'
import type { Bridge } from './bridge.js'
import { parsePresence, type PresenceTracker } from './presence.js'

/**
 * Bounds the retained presence topics (issue 13, item 7): every client id ever seen left
 * a retained `presence/<id>` for ever (500 runs of mosquitto_pub, 500 topics). Kept: the
 * live clients' "online", and the `keep` most recent "offline" notices (so a page still
 * shows who left lately); the retained presence of an older offline client is cleared
 * (an empty retained message, [MQTT-3.3.1-10]). Counted in `stored.presencePruned`.
 *
 * Returns the function that stops watching.
 */
export async function prunePresence (bridge: Bridge, presence: PresenceTracker, keep: number, stats: Stats): Promise<() => void> {
  // Offline clients by id, oldest notice first (a Map keeps insertion order).
  const recent = new Map<string, number>()
  const clear = (clientId: string): void => {
    stats.stored.presencePruned++
    const ts = Date.now()
    bridge.publish({ topic: `presence/${clientId}`, payload: Buffer.alloc(0), qos: 0, retain: true, origin: { ts, via: 'mqtt', from: clientId, clientId } }).catch(() => {})
  }
  const wentOffline = (clientId: string, ts: number): void => {
    recent.delete(clientId)
    recent.set(clientId, ts)
    while (recent.size > keep) {
      const oldest = recent.keys().next().value as string
      recent.delete(oldest)
      clear(oldest)
    }
  }
  const stored = []
  for (const msg of await bridge.retained('presence/+')) {
    const info = parsePresence(msg.topic.slice('presence/'.length), msg)
    if (info?.status === 'offline') stored.push(info)
  }
  stored.sort((a, b) => a.ts - b.ts)
  for (const info of stored) wentOffline(info.clientId, info.ts)
  return presence.onChange((p) => {
    if (p.status === 'online') recent.delete(p.clientId)
    else wentOffline(p.clientId, p.ts)
  })
}

/** True when a presence payload (our JSON or a device's plain text) says online. */
export function presenceSaysOnline (payload: Buffer): boolean {
  const text = payload.toString('utf8')
  if (text.startsWith('{')) {
    try { return (JSON.parse(text) as { status?: unknown }).status === 'online' } catch { return false }
  }
  return text.trim().toLowerCase() === 'online'
}
