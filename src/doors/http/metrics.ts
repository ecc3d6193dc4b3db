import type { Stats } from '../../core/stats.js'
import { DOORS } from '../../core/stats.js'

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
  metric('fusion_uptime_seconds', 'gauge', 'Seconds since start.', [['', (Date.now() - stats.startedAt) / 1000]])
  const lag = extra.eventLoop as { maxMs: number, p99Ms: number } | undefined
  if (lag) {
    metric('fusion_event_loop_lag_max_seconds', 'gauge', 'Longest event-loop stall over the last 30-60 s.', [['', lag.maxMs / 1000]])
    metric('fusion_event_loop_lag_p99_seconds', 'gauge', '99th percentile of the event-loop delay over the last 30-60 s.', [['', lag.p99Ms / 1000]])
  }
  metric('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [['', process.memoryUsage.rss()]])
  return lines.join('\n') + '\n'
}
