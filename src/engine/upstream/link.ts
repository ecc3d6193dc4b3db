import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import { FusionError } from '../../core/errors.js'
import type { Admit } from '../../core/admit.js'
import type { Identity, LogFn } from '../../core/types.js'
import type { TopicLimits } from '../../core/topics/topic-rules.js'
import { throttledLog } from '../../core/log-throttle.js'
import type { PublishRequest } from '../bridge.js'
import { MqttLengthGuard } from '../../core/mqtt-length-guard.js'
import { clientUnsentBytes, inspectClientReads } from '../internals/index.js'
import type { UpstreamConfig } from './config.js'
import type { OutboundMessage, OutboundQueue } from './outbound-queue.js'
import { RuleSet, toLocal } from './rules.js'
import { ruleCovers, splitLevels, type Levels } from '../../core/topics/topic-match.js'

/** What a link is doing: trying, up, waiting to try again, or shut. */
export type LinkState = 'connecting' | 'connected' | 'waiting' | 'closed'

/** A link's figures, as /api/stats, /metrics, /api/health and `$SYS` show them. */
export interface LinkStats {
  readonly name: string
  readonly url: string
  readonly state: LinkState
  readonly connected: boolean
  /** QoS 1 messages waiting for the upstream (in flight included). */
  readonly queued: number
  readonly queuedBytes: number
  readonly inflight: number
  readonly messagesIn: number
  readonly messagesOut: number
  /** Dropped: queue full (oldest first), QoS 0 while down or congested, refused by the ACL or the limits. */
  readonly dropped: { readonly queueFull: number, readonly offline: number, readonly refused: number }
  readonly lastError: string | undefined
  /** Successful connections, and every attempt (a tight loop would show here). */
  readonly connects: number
  readonly attempts: number
  readonly since: number
}

export interface LinkDeps {
  readonly config: UpstreamConfig
  readonly queue: OutboundQueue
  /** The one admission path: topic rules, the ACL (as bridge:<name>), size, then the origin stamp. */
  readonly admit: Admit
  readonly limits: TopicLimits & { readonly maxPayload: number, readonly maxPacket: number }
  /** Publishes into the local topic space; resolves once stored (the hub bridge's publish). */
  readonly publish: (req: PublishRequest) => Promise<void>
  readonly log: LogFn
  /** Called when the state or the figures changed (the `$SYS` topic). */
  readonly onChange?: (() => void) | undefined
  /** Tests: the random source of the jitter. */
  readonly random?: () => number
}

/** Bytes a link may have unsent on its socket before QoS 0 messages are dropped instead. */
const QOS0_HIGH_WATER = 1024 * 1024
/** A CONNECT that gets no CONNACK in this long is a failure. */
const CONNECT_TIMEOUT_MS = 10_000

/** The ACL identity of a link: `bridge:<name>` can never be a user of the users file (`:` separates its fields). */
export function bridgeIdentity (name: string): Identity {
  const id = `bridge:${name}`
  return { clientId: id, username: id, door: 'mqtt' }
}

/**
 * One upstream connection. It holds at most one MQTT.js client at a time and makes a
 * new one for every attempt (MQTT.js's own reconnect would resend its in-memory
 * in-flight messages behind our queue's back). QoS 1 messages leave from the disk queue,
 * oldest first, at most `maxInflight` unacknowledged; after a reconnect the
 * unacknowledged ones go first again, in order. Inbound QoS 1 messages are acknowledged
 * only after the local publish has stored them.
 */
export class UpstreamLink {
  readonly name: string
  readonly identity: Identity
  readonly rules: RuleSet
  readonly #deps: LinkDeps
  readonly #config: UpstreamConfig
  readonly #queue: OutboundQueue
  readonly #refusedLog: LogFn
  #client: MqttClient | undefined
  #generation = 0
  #state: LinkState = 'waiting'
  #window: number
  #timer: NodeJS.Timeout | undefined
  #failures = 0
  #lastError: string | undefined
  #loggedError: string | undefined
  #in = 0
  #out = 0
  #offline = 0
  #refused = 0
  #connects = 0
  #attempts = 0
  #since = Date.now()
  #pumping = false
  #subscribed: Levels[] = []

  constructor (deps: LinkDeps) {
    this.#deps = deps
    this.#config = deps.config
    this.#queue = deps.queue
    this.name = deps.config.name
    this.identity = bridgeIdentity(deps.config.name)
    this.rules = new RuleSet(deps.config.rules)
    this.#window = deps.config.maxInflight
    this.#refusedLog = throttledLog(deps.log)
  }

  get state (): LinkState { return this.#state }

  /** Starts connecting; never throws (a failure is a state and one log line). */
  start (): void {
    if (this.#state === 'closed') return
    this.#connect()
  }

  /**
   * A local message an out rule matched (the rule's QoS already applied). QoS 1: queued on
   * disk, the promise settles once it is stored. QoS 0: sent now if the link is up and
   * not congested, else dropped and counted.
   */
  send (msg: OutboundMessage): Promise<void> | undefined {
    if (msg.qos === 1) {
      const stored = this.#queue.push(msg)
      stored.then(() => this.#pump(), () => {})
      this.#pump()
      return stored
    }
    const client = this.#client
    if (this.#state !== 'connected' || !client || this.#congested(client)) {
      this.#offline++
      return undefined
    }
    this.#out++
    client.publish(msg.topic, msg.payload, { qos: 0, retain: msg.retain })
    return undefined
  }

  /** A local message an out rule matched but the ACL does not let this link read. */
  noteRefused (): void { this.#refused++ }

  stats (): LinkStats {
    return {
      name: this.name,
      url: this.#config.url,
      state: this.#state,
      connected: this.#state === 'connected',
      queued: this.#queue.size,
      queuedBytes: this.#queue.bytes,
      inflight: this.#queue.inflight,
      messagesIn: this.#in,
      messagesOut: this.#out,
      dropped: { queueFull: this.#queue.dropped, offline: this.#offline, refused: this.#refused },
      lastError: this.#lastError,
      connects: this.#connects,
      attempts: this.#attempts,
      since: this.#since
    }
  }

  /** Ends the connection and writes the queue's pending state; safe to call twice. */
  async close (): Promise<void> {
    if (this.#state !== 'closed') {
      this.#setState('closed')
      clearTimeout(this.#timer)
      this.#generation++
      const client = this.#client
      this.#client = undefined
      if (client) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()))
    }
    await this.#queue.close()
  }

  #congested (client: MqttClient): boolean {
    return clientUnsentBytes(client) > QOS0_HIGH_WATER
  }

  #setState (s: LinkState): void {
    if (this.#state === s) return
    this.#state = s
    this.#since = Date.now()
    this.#deps.onChange?.()
  }

  #options (): IClientOptions {
    const c = this.#config
    return {
      clientId: c.clientId,
      username: c.username,
      password: c.password,
      keepalive: c.keepalive,
      clean: c.clean,
      protocolVersion: c.protocolVersion,
      ...(c.protocolVersion === 5 && !c.clean ? { properties: { sessionExpiryInterval: c.sessionExpiry } } : {}),
      // Our own reconnect (backoff with jitter, a fresh client each time): see the class comment.
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      manualConnect: true,
      resubscribe: false,
      queueQoSZero: false,
      ...(c.ca ? { ca: c.ca } : {}),
      ...(c.cert ? { cert: c.cert, key: c.key } : {}),
      rejectUnauthorized: true
    }
  }

  #connect (): void {
    const generation = ++this.#generation
    this.#attempts++
    this.#setState('connecting')
    let client: MqttClient
    try {
      client = mqtt.connect(this.#config.url, this.#options())
    } catch (err) {
      this.#failed(generation, err as Error)
      return
    }
    this.#client = client
    // MQTT.js, like Aedes, buffers any packet length a header declares: an upstream (or
    // whoever answers at its address) must not make us hold 256 MB.
    const guard = new MqttLengthGuard(this.#deps.limits.maxPacket + 64)
    let cut: string | undefined
    inspectClientReads(client, (chunk) => {
      cut ??= guard.check(chunk)
      return cut === undefined
    })
    client.handleMessage = (packet, done) => { this.#inbound(generation, client, packet as IPublishPacket, done) }
    client.on('connect', (connack) => {
      if (generation !== this.#generation) return
      const max = connack.properties?.receiveMaximum
      this.#window = Math.max(1, Math.min(this.#config.maxInflight, max ?? Infinity))
      this.#failures = 0
      this.#connects++
      if (this.#loggedError !== undefined) this.#deps.log('info', `upstream ${this.name}: connected to ${this.#config.url} again`)
      this.#loggedError = undefined
      this.#lastError = undefined
      this.#setState('connected')
      this.#subscribe(generation, client)
      this.#queue.requeueInflight()
      this.#pump()
    })
    client.on('error', (err) => {
      if (generation === this.#generation) this.#lastError = describe(err)
    })
    client.on('close', () => this.#failed(generation, cut === undefined ? undefined : new Error(`the upstream sent ${cut}; connection cut`)))
    client.connect()
  }

  #subscribe (generation: number, client: MqttClient): void {
    const filters = [...this.rules.remoteFilters]
    this.#subscribed = filters.map(([f]) => splitLevels(f))
    const v5 = this.#config.protocolVersion === 5
    filters.forEach(([filter, qos], i) => {
      // MQTT 5: "no local" [MQTT-3.8.3-3], so the upstream does not send back what this
      // link published (a `both` rule would see its own messages again), and one
      // subscription identifier per filter [MQTT-3.8.2.1.2], so a copy the upstream
      // sends for each of two overlapping filters is taken once.
      const opts = v5 ? { qos, nl: true, properties: { subscriptionIdentifier: i + 1 } } : { qos }
      client.subscribe(filter, opts, (err, granted) => {
        if (generation !== this.#generation || err) return
        if ((granted ?? []).some((g) => (g.qos as number) >= 0x80)) {
          this.#lastError = `the upstream refused the subscription to ${filter}`
          this.#deps.log('warn', `upstream ${this.name}: ${this.#lastError}`)
        }
      })
    })
  }

  /** With subscription identifiers: false for the copy of a message sent for a filter that is not the first to match it. */
  #firstCopy (packet: IPublishPacket): boolean {
    const ids = packet.properties?.subscriptionIdentifier
    if (ids === undefined) return true
    const levels = splitLevels(packet.topic)
    const first = this.#subscribed.findIndex((f) => ruleCovers(f, levels)) + 1
    return Array.isArray(ids) ? ids.includes(first) : ids === first
  }

  /** The connection ended or never started: forget the client, try again later. */
  #failed (generation: number, err?: Error): void {
    if (generation !== this.#generation || this.#state === 'closed') return
    if (err) this.#lastError = describe(err)
    const client = this.#client
    this.#client = undefined
    this.#generation++
    client?.removeAllListeners('connect')
    client?.end(true)
    this.#queue.requeueInflight()
    const why = this.#lastError ?? 'the connection closed'
    // One line per distinct problem, not one per attempt.
    if (why !== this.#loggedError) {
      this.#loggedError = why
      this.#deps.log('warn', `upstream ${this.name} (${this.#config.url}): ${why}; retrying with backoff (state in /api/health)`)
    }
    this.#lastError = why
    const c = this.#config
    const ceiling = Math.min(c.reconnectMaxMs, c.reconnectMinMs * 2 ** Math.min(this.#failures, 30))
    this.#failures++
    // "Equal jitter": half the ceiling plus a random half, so links that fail together
    // do not retry together, and a wait never shrinks to nothing.
    const delay = Math.round(ceiling / 2 + (this.#deps.random ?? Math.random)() * ceiling / 2)
    this.#setState('waiting')
    this.#timer = setTimeout(() => this.#connect(), delay)
    this.#timer.unref()
  }

  /** Sends queued QoS 1 messages while the window allows. */
  #pump (): void {
    if (this.#pumping) return
    this.#pumping = true
    try {
      const client = this.#client
      const generation = this.#generation
      while (this.#state === 'connected' && client && this.#queue.inflight < this.#window) {
        const next = this.#queue.take()
        if (next === undefined) break
        if (next === 'load') {
          this.#queue.load().then(() => this.#pump(), (err: Error) => { this.#lastError = `the queue could not be read: ${err.message}` })
          break
        }
        const { seq, msg } = next
        client.publish(msg.topic, msg.payload, { qos: 1, retain: msg.retain }, (err) => {
          if (generation !== this.#generation || err) return // the link dropped: requeued, sent again
          this.#out++
          this.#queue.ack(seq)
          this.#pump()
        })
      }
    } finally {
      this.#pumping = false
    }
  }

  /** One message from the upstream; MQTT.js sends the PUBACK when `done` is called without an error. */
  #inbound (generation: number, client: MqttClient, packet: IPublishPacket, done: (err?: Error) => void): void {
    const remote = packet.topic
    const rule = this.rules.inRule(remote)
    if (!rule || !this.#firstCopy(packet)) { done(); return } // the upstream sent what no rule asked for (an overlapping session subscription)
    const local = toLocal(rule, remote)
    const raw = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload)
    let admitted
    try {
      admitted = this.#deps.admit({ source: 'bridge-in', who: this.identity, name: this.identity.clientId, topic: local, payload: raw })
    } catch (err) {
      // Refused for good: acknowledged and dropped, since a resend would be refused too.
      this.#refused++
      const acl = (err as FusionError).code === 'ACL_DENIED' ? ` (ACL user ${this.identity.username})` : ''
      this.#refusedLog('warn', `upstream ${this.name}: ${local} (rule on line ${rule.line}) refused: ${(err as Error).message}${acl}`)
      done()
      return
    }
    const qos = Math.min(packet.qos, rule.qos) as 0 | 1
    this.#deps.publish({
      topic: admitted.topic,
      payload: admitted.payload,
      qos,
      retain: packet.retain === true,
      origin: { ...admitted.origin, via: 'bridge' }
    }).then(() => {
      if (generation !== this.#generation) return
      this.#in++
      done()
    }, (err: Error) => {
      // Not stored: no PUBACK. The link drops, so the upstream keeps the message and
      // sends it again on the next session [MQTT-4.4.0-1].
      if (generation !== this.#generation) return
      this.#lastError = `a message from the upstream could not be stored: ${err.message}`
      client.end(true)
    })
  }
}

/** One line for an MQTT.js error: CONNACK refusals by name, socket errors by code. */
function describe (err: Error): string {
  const code = (err as { code?: unknown }).code
  if (typeof code === 'number') return `the upstream refused the connection: ${err.message} (CONNACK ${code})`
  if (typeof code === 'string') return `${err.message}`
  return err.message
}
