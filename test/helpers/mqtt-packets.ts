// Packet-level MQTT over in-memory streams, as Aedes's own tests do (test/helper.js there):
// a broker handles one side of a stream pair; this side writes packets made by
// mqtt-packet's generate() and reads what comes back with its parser. No socket, no
// client library between the test and the broker.
import { duplexPair, type Duplex } from 'node:stream'
import mqttPacket, { type Packet } from 'mqtt-packet'
import type { Aedes, Client } from 'aedes'
import { parseOneBufferAtATime, readWholeBuffer } from '../../src/engine/internals/index.js'

/** The subset of tap's Test that the helpers use. */
export interface T {
  teardown (fn: () => unknown): void
}

export type AnyPacket = Packet & { [k: string]: any }

const WAIT_MS = 3000

/** One MQTT connection to `broker`, packet by packet. */
export class PacketClient {
  /** Every packet received, in order. */
  readonly received: AnyPacket[] = []
  /** The broker's Client for this connection. */
  readonly client: Client
  /** The broker's side of the pair (what Aedes writes to: `client.conn`). */
  readonly serverSide: Duplex
  readonly #side: Duplex
  readonly #waiters = new Set<() => void>()
  #closed = false
  #nextId = 1

  constructor (broker: Aedes) {
    const [mine, theirs] = duplexPair()
    this.#side = mine
    this.serverSide = theirs
    const parser = mqttPacket.parser()
    parser.on('packet', (p: Packet) => {
      this.received.push(p as AnyPacket)
      for (const w of [...this.#waiters]) w()
    })
    mine.on('data', (buf: Buffer) => parser.parse(buf))
    const ended = (): void => {
      if (this.#closed) return
      this.#closed = true
      theirs.destroy()
      mine.destroy()
      for (const w of [...this.#waiters]) w()
    }
    mine.on('close', ended)
    mine.on('end', ended)
    theirs.on('close', ended)
    // As every MQTT door does (internals: stream-io, parser-in-turn).
    readWholeBuffer(theirs)
    this.client = broker.handle(theirs)
    parseOneBufferAtATime(this.client)
  }

  /** True once either side closed the connection. */
  get closed (): boolean { return this.#closed }

  /** Writes one packet to the broker. */
  send (packet: AnyPacket): void { this.#side.write(mqttPacket.generate(packet)) }

  /** A fresh packet identifier. */
  id (): number { return this.#nextId++ }

  /** Waits for the first packet at index >= `from` that satisfies `match`; resolves with it and its index. */
  async waitFor (match: (p: AnyPacket) => boolean, what: string, from = 0): Promise<{ packet: AnyPacket, index: number }> {
    const find = (): number => this.received.findIndex((p, i) => i >= from && match(p))
    let i = find()
    if (i >= 0) return { packet: this.received[i] as AnyPacket, index: i }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.#waiters.delete(check); reject(new Error(`no ${what} within ${WAIT_MS} ms (got ${this.received.map((p) => p.cmd).join(', ') || 'nothing'})`)) }, WAIT_MS)
      const check = (): void => {
        if (find() < 0 && !this.#closed) return
        clearTimeout(timer)
        this.#waiters.delete(check)
        resolve()
      }
      this.#waiters.add(check)
    })
    i = find()
    if (i < 0) throw new Error(`the connection closed before ${what} (got ${this.received.map((p) => p.cmd).join(', ') || 'nothing'})`)
    return { packet: this.received[i] as AnyPacket, index: i }
  }

  /** Resolves once the connection is closed (by either side). */
  async waitClosed (): Promise<void> {
    if (this.#closed) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.#waiters.delete(check); reject(new Error(`the connection stayed open for ${WAIT_MS} ms`)) }, WAIT_MS)
      const check = (): void => {
        if (!this.#closed) return
        clearTimeout(timer)
        this.#waiters.delete(check)
        resolve()
      }
      this.#waiters.add(check)
    })
  }

  /** CONNECT and wait for CONNACK; resolves with the CONNACK. */
  async connect (clientId: string, opts: { clean?: boolean, will?: AnyPacket['will'] } = {}): Promise<AnyPacket> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: opts.clean ?? true, clientId, keepalive: 0, ...(opts.will ? { will: opts.will } : {}) } as AnyPacket)
    return (await this.waitFor((p) => p.cmd === 'connack', 'CONNACK')).packet
  }

  /** SUBSCRIBE and wait for the SUBACK; resolves with the granted codes. */
  async subscribe (subs: Array<{ topic: string, qos: 0 | 1 | 2 }>): Promise<number[]> {
    const messageId = this.id()
    this.send({ cmd: 'subscribe', messageId, subscriptions: subs } as AnyPacket)
    const { packet } = await this.waitFor((p) => p.cmd === 'suback' && p.messageId === messageId, 'SUBACK')
    return packet.granted as number[]
  }

  /**
   * PINGREQ and wait for its PINGRESP; resolves with the PINGRESP's index. Aedes handles
   * a connection's packets in order and writes to one stream, so whatever it wrote
   * before it handled the PINGREQ is in `received` before that index.
   */
  async ping (): Promise<number> {
    const from = this.received.length
    this.send({ cmd: 'pingreq' } as AnyPacket)
    return (await this.waitFor((p) => p.cmd === 'pingresp', 'PINGRESP', from)).index
  }

  /** PUBLISH packets received so far, on `topic` if given. */
  publishes (topic?: string): AnyPacket[] {
    return this.received.filter((p) => p.cmd === 'publish' && (topic === undefined || p.topic === topic))
  }

  /** DISCONNECT, then wait for the broker to close. */
  async disconnect (): Promise<void> {
    this.send({ cmd: 'disconnect' } as AnyPacket)
    await this.waitClosed()
  }

  /** Ends the connection without DISCONNECT (a dead device). */
  drop (): void { this.#side.destroy() }
}

/** Publishes through the broker itself and resolves once every subscriber's copy was written. */
export function brokerPublish (broker: Aedes, packet: { topic: string, payload: string | Buffer, qos: 0 | 1 | 2, retain?: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    broker.publish({ cmd: 'publish', dup: false, retain: false, ...packet } as never, (err?: Error) => (err ? reject(err) : resolve()))
  })
}

/** A new packet client on `broker`, destroyed at teardown. */
export function packetClient (t: T, broker: Aedes): PacketClient {
  const c = new PacketClient(broker)
  t.teardown(() => c.drop())
  return c
}

/** Closes `broker` at teardown. */
export function closeAtTeardown (t: T, broker: Aedes): Aedes {
  t.teardown(() => new Promise<void>((resolve) => broker.close(() => resolve())))
  return broker
}
