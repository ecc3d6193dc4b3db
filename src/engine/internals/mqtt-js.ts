import type { Duplex } from 'node:stream'
import type { MqttClient } from 'mqtt'

// MQTT.js 5.16 builds each connection's stream with the client's `streamBuilder(client)`
// (lib/client.ts, connect()) and pipes it into its parser, which, like Aedes's, buffers
// whatever length a fixed header declares. It keeps the stream as `client.stream`. It
// reads by `pipe()`, whose flowing mode hands chunks to 'data' listeners without calling
// `read()`, so the inspection is the first 'data' listener: it sees each chunk before the
// parser does, and a destroyed stream delivers nothing after that chunk (at most one
// socket read, 64 KiB, reaches the parser).

interface ClientInternals {
  streamBuilder: (client: MqttClient) => Duplex
  stream?: Duplex
}

/**
 * Lets `inspect` see each chunk MQTT.js reads from the connection `client` builds next
 * (call before `client.connect()` with `manualConnect`); false destroys the stream.
 */
export function inspectClientReads (client: MqttClient, inspect: (chunk: Buffer) => boolean): void {
  const c = client as unknown as ClientInternals
  const build = c.streamBuilder
  c.streamBuilder = (cl) => {
    const stream = build(cl)
    stream.prependListener('data', (chunk: Buffer | string) => {
      if (typeof chunk !== 'string' && !inspect(chunk)) stream.destroy()
    })
    return stream
  }
}

/** Bytes MQTT.js has written to the connection that the socket has not sent yet. */
export function clientUnsentBytes (client: MqttClient): number {
  return (client as unknown as ClientInternals).stream?.writableLength ?? 0
}
