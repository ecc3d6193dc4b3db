// Runs on the comparison page: a burst (N messages, at most W waiting for their echo) or
// a fixed rate (R messages a second for S seconds) through one door. No DOM here: the
// sending loop only sends and records; the page draws from what it recorded, later.

/** Most messages per door in one run. */
export const MAX_MESSAGES = 10_000
/** Most messages waiting for their echo at once in a burst. */
export const MAX_WINDOW = 100
/** Fastest fixed rate, messages a second (the gateway's --msg-rate may allow less). */
export const MAX_RATE = 5000
/** Longest fixed-rate run, seconds per door. */
export const MAX_SECONDS = 60

/*
 * Waiting without timer nesting. A browser clamps a timer set from inside a timer's
 * callback to at least 4 ms once five are nested (HTML, "timer initialisation steps"),
 * and a chain of timers is nested without end. MQTT.js's browser bundle runs
 * process.nextTick as setTimeout(fn, 0), and writes a PUBLISH in a nextTick: published
 * from deep in a timer chain, every message waited 4 ms more before it left, which the
 * page then timed as MQTT's round trip. So each wait ends in a message-channel task, a
 * task of its own with no timer nesting, and the page sends from there.
 */
const channel = new MessageChannel()
/** @type {Array<() => void>} */
const tasks = []
channel.port1.onmessage = () => {
  const fn = tasks.shift()
  // In Node (the unit tests) an open port keeps the process alive: only while a task waits.
  if (tasks.length === 0) channel.port1.unref?.()
  fn?.()
}
channel.port1.unref?.()

/** Runs `fn` after `ms`, in a task of its own (see above). Returns the timer, for clearTimeout. */
export function later (fn, ms) {
  return setTimeout(() => {
    tasks.push(fn)
    channel.port1.ref?.()
    channel.port2.postMessage(0)
  }, ms)
}

/**
 * The page's copy of the gateway's per-connection token bucket (--msg-rate, bursts of
 * twice that), kept a little below it: a page that sent faster would get RATE_LIMITED
 * errors on /ws and its MQTT connection closed, and measure the penalty instead of the door.
 */
export class Pacer {
  /**
   * @param {number} ratePerSec 0 or less: no limit
   * @param {number} burst
   * @param {number} [margin] the share of the gateway's allowance used
   */
  constructor (ratePerSec, burst, margin = 0.9) {
    this.margin = margin
    this.retune(ratePerSec, burst)
    this.tokens = this.burst
    this.last = performance.now()
  }

  /** New limits learnt (from /api/stats) for the same connection: what was used stays used. */
  retune (ratePerSec, burst) {
    this.ratePerSec = ratePerSec > 0 ? ratePerSec * this.margin : Infinity
    this.burst = ratePerSec > 0 ? Math.max(1, Math.floor(burst * this.margin)) : Infinity
    if (this.tokens > this.burst) this.tokens = this.burst
  }

  #refill (now) {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.ratePerSec / 1000)
      this.last = now
    }
  }

  /** Takes a token when there is one. */
  take (now = performance.now()) {
    if (this.ratePerSec === Infinity) return true
    this.#refill(now)
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** Milliseconds until the next token. */
  waitMs (now = performance.now()) {
    if (this.ratePerSec === Infinity) return 0
    this.#refill(now)
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * 1000 / this.ratePerSec)
  }
}

/**
 * @typedef {object} Echo
 * @property {number} rtt milliseconds from send to the echo's arrival
 * @property {number} up bytes of the message as sent (frame header included)
 * @property {number} down bytes of the echo as received
 * @property {string} text
 */

/**
 * @typedef {object} RunRecord what one door's run recorded, in send order of the echoes
 * @property {'burst'|'rate'} mode
 * @property {number} planned messages meant to be sent
 * @property {number} sent
 * @property {number} lost sent but not echoed within the timeout (or refused)
 * @property {number[]} at send time of each echoed message, ms from the run's start
 * @property {number[]} rtt round trip of each echoed message, ms
 * @property {Echo[]} echoes
 * @property {number} ms from the first send to the last echo
 * @property {number} lateMs fixed rate: the largest delay of a send against its schedule
 * @property {number} pacedMs time spent waiting for the gateway's rate allowance
 * @property {boolean} stopped
 */

/**
 * Starts a run through one pane. `send(text, done)` puts one message on the wire and
 * calls `done(err, echo)` once (echo or failure); it returns false when it cannot send.
 * @param {{ send: (text: string, done: (err: Error|null, echo?: Echo) => void) => boolean, door: string }} pane
 * @param {{ mode: 'burst', n: number, window: number } | { mode: 'rate', rate: number, seconds: number }} plan
 * @param {{ pacer: Pacer, tag: string, onProgress?: (settled: number, planned: number) => void }} opts
 * @returns {{ done: Promise<RunRecord>, stop: () => void }}
 */
export function startRun (pane, plan, opts) {
  const planned = plan.mode === 'burst'
    ? clampInt(plan.n, 1, MAX_MESSAGES)
    : clampInt(plan.rate * plan.seconds, 1, MAX_MESSAGES)
  const window = plan.mode === 'burst' ? clampInt(plan.window, 1, MAX_WINDOW) : Infinity
  const periodMs = plan.mode === 'rate' ? 1000 / clampInt(plan.rate, 1, MAX_RATE) : 0
  const suffix = pane.door === 'ws' ? 'w' : 'm'
  /** @type {RunRecord} */
  const rec = { mode: plan.mode, planned, sent: 0, lost: 0, at: [], rtt: [], echoes: [], ms: 0, lateMs: 0, pacedMs: 0, stopped: false }
  let settled = 0
  let timer = 0
  let waitingSince = NaN
  let finish = () => {}
  const done = new Promise((resolve) => { finish = () => resolve(rec) })
  const t0 = performance.now()
  let tLast = t0

  const settle = (err, echo, sentAt) => {
    settled++
    if (err || !echo) rec.lost++
    else {
      rec.at.push(sentAt - t0)
      rec.rtt.push(echo.rtt)
      rec.echoes.push(echo)
      tLast = sentAt + echo.rtt
    }
    opts.onProgress?.(settled, planned)
    if (settled === rec.sent && (rec.sent === planned || rec.stopped)) {
      rec.ms = tLast - t0
      finish()
    } else if (plan.mode === 'burst') {
      pump()
    }
  }

  const sendOne = () => {
    rec.sent++
    // Texts of one length through both doors, so their payloads weigh the same.
    const text = `${plan.mode} ${rec.sent}/${planned} ${opts.tag}-${suffix}`
    const sentAt = performance.now()
    if (!pane.send(text, (err, echo) => settle(err, echo, sentAt))) {
      // Not connected: counted as lost, the run goes on (the door may come back).
      settle(new Error('not connected'), undefined, sentAt)
    }
  }

  /** Waits for the gateway's allowance; true when a token was taken. */
  const paced = (now) => {
    if (opts.pacer.take(now)) {
      if (!Number.isNaN(waitingSince)) { rec.pacedMs += now - waitingSince; waitingSince = NaN }
      return true
    }
    if (Number.isNaN(waitingSince)) waitingSince = now
    clearTimeout(timer)
    timer = later(tick, Math.max(1, opts.pacer.waitMs(now)))
    return false
  }

  // Burst: keep `window` messages waiting for their echo. A send that fails at once
  // settles inside the loop: the flag keeps that from recursing.
  let pumping = false
  const pump = () => {
    if (pumping) return
    pumping = true
    try {
      while (!rec.stopped && rec.sent < planned && rec.sent - settled < window) {
        if (!paced(performance.now())) return
        sendOne()
      }
    } finally {
      pumping = false
    }
  }

  // Fixed rate: message i is due at t0 + i x period; every due message goes out at each
  // tick (browsers run timers no more often than every few milliseconds).
  const due = () => {
    const now = performance.now()
    while (!rec.stopped && rec.sent < planned) {
      const dueAt = t0 + rec.sent * periodMs
      if (dueAt > now) {
        clearTimeout(timer)
        timer = later(tick, Math.max(0, dueAt - now))
        return
      }
      if (!paced(now)) return
      rec.lateMs = Math.max(rec.lateMs, now - dueAt)
      sendOne()
    }
  }

  const tick = () => { if (plan.mode === 'burst') pump(); else due() }

  tick()
  return {
    done,
    /** What has been recorded so far (grows while the run goes). */
    record: rec,
    stop () {
      if (rec.stopped) return
      rec.stopped = true
      clearTimeout(timer)
      if (settled === rec.sent) { rec.ms = tLast - t0; finish() }
    }
  }
}

function clampInt (v, min, max) {
  const n = Math.floor(Number(v))
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : min
}
