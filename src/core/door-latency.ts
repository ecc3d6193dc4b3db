import { performance } from 'node:perf_hooks'
import { Histogram, Registry } from 'prom-client'
import type { Door } from './types.js'

/**
 * Upper bounds of the latency buckets, in milliseconds. Fine below a millisecond,
 * where an idle gateway's share of a round trip lies (the comparison page reads a
 * median out of them), coarse above, where only "it was slow" matters. The last
 * bucket (+Inf) is implicit, as in Prometheus.
 */
export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([
  0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 25, 50, 100, 250, 1000, 5000
])

/** One door's histogram as `/api/stats` shows it (see docs/PROTOCOL.md). */
export interface DoorLatencyFigures {
  /** Messages timed. */
  count: number
  /** Sum of their times, in milliseconds. */
  sumMs: number
  /** Cumulative counts per bucket, as Prometheus `le`: one per bound of `buckets`, then +Inf. */
  counts: number[]
}

export interface LatencySnapshot {
  readonly unit: 'ms'
  /** What is timed, in one sentence (so a reader of the JSON need not look it up). */
  readonly measures: string
  readonly buckets: readonly number[]
  readonly doors: Record<Door, DoorLatencyFigures>
}

interface Flight {
  readonly door: Door
  readonly t0: number
  /** When the last copy was written (a /ws session's send is synchronous). */
  last: number
  /** A copy went to an MQTT client: Aedes writes it in an immediate of its own. */
  deferred: boolean
  /** Waiting for the end of the fan-out pass. */
  queued: boolean
}

const MEASURES = 'from the door reading a message to the gateway writing its last live copy to a subscriber, by the door that read it'

/**
 * The gateway's own share of a message's trip, per door: from the moment the door has
 * read the message (a /ws frame, an MQTT PUBLISH packet) to the moment the gateway has
 * written the last live copy of it to a subscriber's socket. A Prometheus histogram
 * (prom-client) with a `door` label, shown in `/metrics` and `/api/stats`.
 *
 * A message is followed by its origin stamp, the `properties` object Aedes hands by
 * reference to every copy (see core/origin.ts), in a WeakMap: what is never delivered
 * is forgotten with its packet, so memory is bounded by the messages in flight.
 *
 * When is the last copy written? Every delivery of one publish is started in one
 * synchronous pass of the broker's router. A /ws session writes during that pass; Aedes
 * writes to an MQTT client in an immediate it queues during that pass (lib/client.js,
 * deliver0/deliverQoS). So after the pass (a nextTick), either every copy is out, or an
 * immediate queued then runs right after Aedes's last write: immediates run in the order
 * they were queued. The messages of one pass (one socket read may hold many) share that
 * nextTick and that immediate: the cost per message is a WeakMap entry and one
 * histogram observation, whatever its number of subscribers.
 */
export class DoorLatency {
  readonly registry = new Registry()
  readonly #histogram: Histogram<'door'>
  readonly #observe: Record<Door, (seconds: number) => void>
  readonly #flights = new WeakMap<object, Flight>()
  readonly #now: () => number
  readonly #doors: readonly Door[]
  /** Stamps and flights delivered in the current pass, settled together after it. */
  #passed: Array<object | Flight> = []

  /** `doors`: every door, each with its series from the start. */
  constructor (doors: readonly Door[], opts: { now?: () => number } = {}) {
    this.#doors = doors
    this.#now = opts.now ?? (() => performance.now())
    this.#histogram = new Histogram({
      name: 'fusion_door_latency_seconds',
      help: `Seconds ${MEASURES}.`,
      labelNames: ['door'],
      buckets: LATENCY_BUCKETS_MS.map((ms) => ms / 1000),
      registers: [this.registry]
    })
    const observe = {} as Record<Door, (seconds: number) => void>
    for (const door of doors) {
      this.#histogram.zero({ door })
      const child = this.#histogram.labels(door)
      observe[door] = (s) => child.observe(s)
    }
    this.#observe = observe
  }

  /**
   * A door read a message; `stamp` is the origin object on its packet, `at` when the
   * door read it (performance.now()).
   */
  received (stamp: object, door: Door, at: number = this.#now()): void {
    this.#flights.set(stamp, { door, t0: at, last: at, deferred: false, queued: false })
  }

  /**
   * A live copy of the message with this stamp goes to a subscriber: written now
   * (`deferred` false, a /ws session) or in an immediate Aedes has queued (`deferred`
   * true, an MQTT client). Copies of messages not followed (replays, a cluster peer's)
   * are ignored.
   */
  delivered (stamp: object | undefined, deferred: boolean): void {
    if (stamp === undefined) return
    const flight = this.#flights.get(stamp)
    if (!flight) return
    if (deferred) flight.deferred = true
    else flight.last = this.#now()
    if (flight.queued) return
    flight.queued = true
    if (this.#passed.length === 0) process.nextTick(this.#afterPass)
    this.#passed.push(stamp, flight)
  }

  /** After the fan-out: copies written in it are settled; MQTT copies after Aedes's writes. */
  readonly #afterPass = (): void => {
    const passed = this.#passed
    this.#passed = []
    let deferred: Array<object | Flight> | undefined
    for (let i = 0; i < passed.length; i += 2) {
      const stamp = passed[i] as object
      const flight = passed[i + 1] as Flight
      if (flight.deferred) (deferred ??= []).push(stamp, flight)
      else this.#settle(stamp, flight, flight.last)
    }
    if (deferred) setImmediate(this.#afterWrites, deferred)
  }

  readonly #afterWrites = (deferred: Array<object | Flight>): void => {
    const now = this.#now()
    for (let i = 0; i < deferred.length; i += 2) this.#settle(deferred[i] as object, deferred[i + 1] as Flight, now)
  }

  /** Observes the flight; `at` is the moment of its last write. */
  #settle (stamp: object, flight: Flight, at: number): void {
    if (this.#flights.get(stamp) !== flight) return
    this.#flights.delete(stamp)
    this.#observe[flight.door](Math.max(0, at - flight.t0) / 1000)
  }

  /** The histogram in Prometheus text format (for `/metrics`). */
  metrics (): Promise<string> { return this.registry.metrics() }

  /** The histogram per door, in milliseconds (for `/api/stats`). */
  async snapshot (): Promise<LatencySnapshot> {
    const data = await this.#histogram.get()
    const doors = {} as Record<Door, DoorLatencyFigures>
    for (const door of this.#doors) doors[door] = { count: 0, sumMs: 0, counts: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) }
    const index = new Map<string, number>(LATENCY_BUCKETS_MS.map((ms, i) => [String(ms / 1000), i]))
    index.set('+Inf', LATENCY_BUCKETS_MS.length)
    for (const v of data.values) {
      const d = doors[v.labels.door as Door]
      if (!d) continue
      if (v.metricName?.endsWith('_bucket')) {
        const i = index.get(String((v.labels as Record<string, unknown>).le))
        if (i !== undefined) d.counts[i] = v.value
      } else if (v.metricName?.endsWith('_sum')) {
        d.sumMs = round3(v.value * 1000)
      } else if (v.metricName?.endsWith('_count')) {
        d.count = v.value
      }
    }
    return { unit: 'ms', measures: MEASURES, buckets: LATENCY_BUCKETS_MS, doors }
  }
}

function round3 (n: number): number { return Math.round(n * 1000) / 1000 }
