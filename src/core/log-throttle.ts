import type { LogFn } from './types.js'
export type Level = 'info' | 'warn' | 'error'
export type LogLike = LogFn

/**
 * A log that writes at most one line per `windowMs` for one kind of event and counts the
 * rest. Aedes reports an error for every pending write of a client that went away; a
 * flood of dying clients must not become a flood of log lines (disk, CPU, a log
 * shipper's bill).
 */
export function throttledLog (log: LogLike, windowMs = 10_000, now: () => number = Date.now): LogLike {
  let last = -Infinity
  let suppressed = 0
  return (level, msg, err) => {
    const t = now()
    if (t - last < windowMs) {
      suppressed++
      return
    }
    last = t
    const more = suppressed > 0 ? ` (and ${suppressed} more like it in the last ${Math.round(windowMs / 1000)} s)` : ''
    suppressed = 0
    log(level, msg + more, err)
  }
}
