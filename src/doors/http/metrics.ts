import type { Stats } from '../../core/stats.js'
import { DOORS } from '../../core/stats.js'
import type { LinkStats } from '../../engine/upstream/link.js'

/**
 * Prometheus text exposition (format 0.0.4). Written by hand: a dozen counters read
 * from Stats, so a client library would only add a second place to keep them.
 */
export function renderMetrics (stats: Stats, extra: Record<string, unknown>): string {
  const lines: string[] = []
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`)
  }
  const perDoor = (pick: (d: Stats['doors']['ws']) => number): Array<[string, number]> =>
    DOORS.map((door) => [`{door="${door}"}`, pick(stats.doors[door])])
  const bytes = (extra.bytes ?? {}) as Record<string, { bytesIn: number, bytesOut: number }>
  metric('fusion_connections', 'gauge', 'Open connections per door.', perDoor((d) => d.connections))
  metric('fusion_connections_total', 'counter', 'Connections accepted per door.', perDoor((d) => d.connectionsTotal))
  metric('fusion_messages_in_total', 'counter', 'Messages received per door.', perDoor((d) => d.messagesIn))
  metric('fusion_messages_out_total', 'counter', 'Messages delivered per door.', perDoor((d) => d.messagesOut))
  metric('fusion_bytes_in_total', 'counter', 'Bytes read from sockets per door.', DOORS.map((door) => [`{door="${door}"}`, bytes[door]?.bytesIn ?? 0]))
  metric('fusion_bytes_out_total', 'counter', 'Bytes written to sockets per door.', DOORS.map((door) => [`{door="${door}"}`, bytes[door]?.bytesOut ?? 0]))
  metric('fusion_dropped_total', 'counter', 'Messages or clients dropped, by reason.',
    Object.entries(stats.dropped).map(([reason, n]) => [`{reason="${reason}"}`, n]))
  metric('fusion_admitted_total', 'counter', 'Messages admitted into the topic space, by source.',
    Object.entries(stats.admitted).map(([source, n]) => [`{source="${source}"}`, n]))
  const links = (Array.isArray(extra.upstream) ? extra.upstream : []) as LinkStats[]
  if (links.length) {
    const per = (pick: (l: LinkStats) => number): Array<[string, number]> => links.map((l) => [`{link="${l.name}"}`, pick(l)])
    metric('fusion_upstream_connected', 'gauge', '1 while the upstream link is connected.', per((l) => (l.connected ? 1 : 0)))
    metric('fusion_upstream_queued', 'gauge', 'QoS 1 messages waiting for the upstream.', per((l) => l.queued))
    metric('fusion_upstream_messages_in_total', 'counter', 'Messages received from the upstream.', per((l) => l.messagesIn))
    metric('fusion_upstream_messages_out_total', 'counter', 'Messages the upstream took.', per((l) => l.messagesOut))
    metric('fusion_upstream_dropped_total', 'counter', 'Messages a link dropped, by reason.',
      links.flatMap((l) => Object.entries(l.dropped).map(([reason, n]): [string, number] => [`{link="${l.name}",reason="${reason}"}`, n])))
  }
  metric('fusion_mqtt_denied_publishes_total', 'counter', 'MQTT publishes the policy refused, by --deny-action outcome.',
    Object.entries(stats.denied).map(([action, n]) => [`{action="${action}"}`, n]))
  metric('fusion_retained_messages', 'gauge', 'Retained topics held.', [['', stats.stored.retainedMessages]])
  metric('fusion_retained_bytes', 'gauge', 'Bytes of retained topics and payloads held.', [['', stats.stored.retainedBytes]])
  metric('fusion_stored_caps_total', 'counter', 'Stored-state caps and checks that acted, by kind (docs/SECURITY.md).', [
    ['{kind="retained_refused"}', stats.stored.retainedRefused],
    ['{kind="queue_dropped"}', stats.stored.queueDropped],
    ['{kind="history_topics_refused"}', stats.stored.historyTopicsRefused],
    ['{kind="presence_pruned"}', stats.stored.presencePruned],
    ['{kind="takeover_refused"}', stats.stored.takeoverRefused],
    ['{kind="forward_denied"}', stats.stored.forwardDenied],
    ['{kind="offline_revoked"}', stats.stored.offlineRevoked]
  ])
  metric('fusion_uptime_seconds', 'gauge', 'Seconds since start.', [['', (Date.now() - stats.startedAt) / 1000]])
  const lag = extra.eventLoop as { maxMs: number, p99Ms: number } | undefined
  if (lag) {
    metric('fusion_event_loop_lag_max_seconds', 'gauge', 'Longest event-loop stall over the last 30-60 s.', [['', lag.maxMs / 1000]])
    metric('fusion_event_loop_lag_p99_seconds', 'gauge', '99th percentile of the event-loop delay over the last 30-60 s.', [['', lag.p99Ms / 1000]])
  }
  metric('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [['', process.memoryUsage.rss()]])
  return lines.join('\n') + '\n'
}
