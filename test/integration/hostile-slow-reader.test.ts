// Readers that stop reading while tens of MB are published to their topic: a /ws client
// is closed with 1013 once its send buffer passes the high-water mark; an MQTT client is
// cut at the same mark, without holding its publishers. The gateway runs as the
// built command, so the RSS printed is the gateway's own.
import t from 'tap'
import type { Socket } from 'node:net'
import { generate, type Packet } from 'mqtt-packet'
import WebSocket from 'ws'
import mqtt from 'mqtt'
import { HubClient } from '../helpers/gateway.js'
import { startCli } from '../helpers/cli.js'
import { assertHealthy, getJson, portOf, RawConn } from '../helpers/security.js'

const MB = 1048576
const PAYLOAD = 64 * 1024
// 40 MB by default; FUSION_BULK_MESSAGES changes it (20 MB peaked at 188 MB RSS, 40 MB at
// 209 MB, 80 MB at 222 MB: the growth is the garbage of the traffic, not the readers).
const MESSAGES = Number(process.env.FUSION_BULK_MESSAGES ?? 640)
// What the gateway may grow by while it happens, over its RSS at start. Node 20 starts
// near 110 MB and grows about 100 MB; Node 24 starts at 147 MB and keeps more of the
// traffic's garbage (grew 174-183 MB, peak 321-329 MB, with both readers dropped as they
// should be), so the absolute 300 MB this used to check failed there. The readers' own
// share is bounded exactly by the test's drop checks (each is cut once its queue passes
// --send-high-water-mark); this is the backstop for anything else the traffic pins.
const RSS_GROWTH_MB = 230

interface Stats { memory: { rss: number }, dropped: { slowConsumer: number }, connections: Record<string, number> }

/** Polls the gateway's stats until `pred` holds, at most `ms`. Returns the last stats. */
async function statsUntil (http: string, pred: (s: Stats) => boolean, ms: number): Promise<Stats> {
  const t0 = Date.now()
  let s = (await getJson(`${http}/api/stats`)).json as Stats
  while (!pred(s) && Date.now() - t0 < ms) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    s = (await getJson(`${http}/api/stats`)).json as Stats
  }
  return s
}

t.test('frozen readers on /ws and MQTT while 40 MB are published to their topic', async (t) => {
  const cli = await startCli(t, ['--memory'])
  const { urls } = cli
  const base = (await getJson(`${urls.http}/api/stats`)).json as Stats
  t.comment(`gateway RSS at start ${Math.round(base.memory.rss / MB)} MB`)
  const RSS_LIMIT_MB = Math.round(base.memory.rss / MB) + RSS_GROWTH_MB

  // A /ws reader that subscribes, then stops reading (its socket paused).
  const frozenWs = new HubClient(new WebSocket(urls.ws))
  t.teardown(() => frozenWs.ws.terminate())
  await frozenWs.waitJson('history')
  await frozenWs.subscribe('bulk/#')
  const wsSocket = (frozenWs.ws as unknown as { _socket: Socket })._socket
  wsSocket.pause()

  // An MQTT reader that subscribes, then stops reading.
  const frozenMqtt = new RawConn(portOf(urls.mqtt))
  t.teardown(() => frozenMqtt.destroy())
  await frozenMqtt.opened
  frozenMqtt.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'frozen', keepalive: 600 } as Packet))
  frozenMqtt.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'bulk/#', qos: 0 }] } as Packet))
  await frozenMqtt.waitBytes(4 + 5, 5000) // CONNACK + SUBACK
  frozenMqtt.socket.pause()

  // A healthy MQTT reader on the same topic must get everything.
  const healthy = await mqtt.connectAsync(urls.mqtt, { clientId: 'healthy-bulk', reconnectPeriod: 0 })
  t.teardown(() => healthy.endAsync(true))
  await healthy.subscribeAsync('bulk/#')
  let healthyGot = 0
  let onHealthy: (() => void) | undefined
  healthy.on('message', () => { healthyGot++; onHealthy?.() })
  // Waits until the healthy reader has `n` messages, at most `ms`; false if it has not.
  const healthyHas = (n: number, ms: number): Promise<boolean> => new Promise((resolve) => {
    if (healthyGot >= n) { resolve(true); return }
    const timer = setTimeout(() => { onHealthy = undefined; resolve(false) }, ms)
    onHealthy = () => { if (healthyGot >= n) { clearTimeout(timer); onHealthy = undefined; resolve(true) } }
  })

  const pub = await mqtt.connectAsync(urls.mqtt, { clientId: 'bulk-publisher', reconnectPeriod: 0 })
  t.teardown(() => pub.endAsync(true))
  const payload = Buffer.alloc(PAYLOAD, 0x61)
  let peak = base.memory.rss
  const t0 = Date.now()
  for (let i = 0; i < MESSAGES; i++) {
    // The healthy reader shares this process with the publisher: on a loaded machine it
    // could fall more than the 4 MiB send mark behind and be cut as a slow consumer,
    // which is the gateway doing its job, not this test's subject. The publisher stays
    // at most 2 MB ahead of it; the frozen readers still get the whole 40 MB stream.
    if (i - healthyGot > 32 && !await healthyHas(i - 32, 20_000)) break
    const sent = await Promise.race([
      pub.publishAsync(`bulk/${i % 8}`, payload).then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 20_000).unref())
    ])
    if (!sent) { t.fail(`publish ${i} of ${MESSAGES} was not written within 20 s: the gateway stopped reading its publisher`); return }
    if (i % 40 === 39) peak = Math.max(peak, ((await getJson(`${urls.http}/api/stats`)).json as Stats).memory.rss)
  }
  if (!await healthyHas(MESSAGES, 20_000)) {
    const s = (await getJson(`${urls.http}/api/stats`)).json as Stats
    t.fail(`the healthy reader stalled at ${healthyGot} of ${MESSAGES} messages (slow consumers dropped: ${s.dropped.slowConsumer}, MQTT connections: ${s.connections.mqtt ?? 0})`)
    return
  }
  const publishMs = Date.now() - t0
  t.pass(`the healthy reader got all ${MESSAGES} messages (${MESSAGES * PAYLOAD / MB} MB) in ${publishMs} ms`)

  // The /ws reader: closed once its queue passed the 4 MiB mark.
  const afterWs = await statsUntil(urls.http, (s) => s.dropped.slowConsumer >= 1, 5000)
  t.ok(afterWs.dropped.slowConsumer >= 1, 'the frozen /ws reader was dropped as a slow consumer')
  wsSocket.resume()
  const code = await frozenWs.closed
  t.ok(code === 1013 || code === 1006, `it sees close ${code} (1013 when it reads again before the server gives up on it, else the connection just ends)`)

  // The MQTT reader: cut once its queue passed the same mark (src/doors/mqtt-tcp/send-queue.ts).
  const dropStart = Date.now()
  const baseMqtt = base.connections.mqtt ?? 0
  const afterMqtt = await statsUntil(urls.http, (s) => (s.connections.mqtt ?? 0) <= baseMqtt + 2, 20_000)
  const mqttDropMs = Date.now() - t0
  t.ok((afterMqtt.connections.mqtt ?? 0) <= baseMqtt + 2, `the frozen MQTT reader was dropped ${mqttDropMs} ms after publishing began (${Date.now() - dropStart} ms after it ended)`)
  peak = Math.max(peak, afterMqtt.memory.rss)
  const peakMb = Math.round(peak / MB)
  t.ok(peakMb < RSS_LIMIT_MB, `gateway RSS peaked at ${peakMb} MB (under ${RSS_LIMIT_MB} MB) while 40 MB went to two frozen readers`)
  t.comment(`frozen readers: gateway RSS ${Math.round(base.memory.rss / MB)} MB at start, peak ${peakMb} MB; /ws reader closed (${code}); MQTT reader dropped ${mqttDropMs} ms after publishing began`)
  await assertHealthy(t, urls, 'frozen readers', { rssLimitMb: RSS_LIMIT_MB })
})
