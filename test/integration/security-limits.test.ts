// Limits, each with the attack it stops: connections in total and per address, the
// connect rate, the message rate on every door, MQTT 3.1.1 CONNECT and PUBLISH rules
// Aedes is lax about, and how fast a dead peer is dropped.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { generate, type Packet } from 'mqtt-packet'
import WebSocket from 'ws'
import { openMqtt, startGateway, nextMqttMessage } from '../helpers/gateway.js'
import { assertHealthy, portOf, postJson, RawConn } from '../helpers/security.js'

function connectPacket (clientId: string, extra: Record<string, unknown> = {}): Buffer {
  return generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30, ...extra } as Packet)
}

/** A raw CONNECT: the CONNACK return code, or 'closed' when the server closed without one. */
async function connectResult (port: number, packet: Buffer): Promise<number | 'closed'> {
  const c = new RawConn(port)
  try {
    await c.opened
    c.write(packet)
    const b = await c.waitBytes(4, 5000)
    if (b.length >= 4 && b[0] === 0x20) return b[3] as number
    await c.closedWithin(3000)
    return 'closed'
  } finally {
    c.destroy()
  }
}

function upgradeStatus (url: string): Promise<{ status: number, code?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url)
    ws.on('open', () => { resolve({ status: 101 }); ws.terminate() })
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, code: (() => { try { return JSON.parse(body).code } catch { return undefined } })() }); ws.terminate() })
    })
    ws.on('error', () => resolve({ status: 0 }))
  })
}

t.test('connections per address and in total, on every door', async (t) => {
  const { urls } = await startGateway(t, { maxConnectionsPerIp: 4, maxConnections: 6 })
  const port = portOf(urls.mqtt)
  const held: RawConn[] = []
  t.teardown(() => { for (const c of held) c.destroy() })
  for (let i = 0; i < 4; i++) {
    const c = new RawConn(port)
    held.push(c)
    await c.opened
    c.write(connectPacket(`held-${i}`))
    t.equal((await c.waitBytes(4, 5000))[3], 0, `connection ${i + 1} of 4 from this address`)
  }
  t.equal(await connectResult(port, connectPacket('fifth')), 'closed', 'MQTT: the fifth from one address is closed before CONNACK')
  const ws = await upgradeStatus(urls.ws)
  t.same(ws, { status: 503, code: 'LIMIT_EXCEEDED' }, '/ws: 503 LIMIT_EXCEEDED')
  held.pop()?.destroy()
  await held.length // one slot back once the socket has closed on the server
  const again = await (async () => {
    for (let i = 0; i < 50; i++) {
      const r = await connectResult(port, connectPacket('again'))
      if (r !== 'closed') return r
    }
    return 'closed'
  })()
  t.equal(again, 0, 'a slot freed by a close is usable again')
})

t.test('the connect rate per address', async (t) => {
  // One a second (bursts of 2): slow enough that the time the test takes adds little.
  const { gateway, urls } = await startGateway(t, { connectRate: 1 })
  const port = portOf(urls.mqtt)
  const [mqttResults, wsResults] = await Promise.all([
    Promise.all(Array.from({ length: 20 }, (_, i) => connectResult(port, connectPacket(`burst-${i}`)))),
    Promise.all(Array.from({ length: 10 }, () => upgradeStatus(urls.ws)))
  ])
  const accepted = mqttResults.filter((r) => r === 0).length + wsResults.filter((r) => r.status === 101).length
  t.ok(accepted >= 2 && accepted <= 6, `${accepted} of 30 connects at once accepted (bursts of 2 at 1 a second)`)
  t.ok(wsResults.some((r) => r.status === 429 && r.code === 'RATE_LIMITED'), '/ws: 429 RATE_LIMITED')
  t.ok(mqttResults.filter((r) => r === 'closed').length >= 10, 'MQTT: closed before CONNACK')
  t.ok(gateway.stats.dropped.rateLimited >= 20)
})

t.test('the message rate: MQTT clients over it are disconnected, their will still goes', async (t) => {
  // Two a second (bursts of 4): the few messages of the health check still fit.
  const { gateway, urls } = await startGateway(t, { msgRate: 2 })
  const watcher = await openMqtt(t, urls.mqtt, { clientId: 'watcher' })
  await watcher.subscribeAsync('wills/#')
  const will = nextMqttMessage(watcher, (topic) => topic === 'wills/flooder')
  const flooder = await openMqtt(t, urls.mqtt, { clientId: 'flooder', will: { topic: 'wills/flooder', payload: Buffer.from('gone'), qos: 0, retain: false } })
  const closed = new Promise<void>((resolve) => flooder.once('close', () => resolve()))
  for (let i = 0; i < 50 && flooder.connected; i++) flooder.publish('flood/mqtt', 'x')
  await closed
  t.pass('disconnected (MQTT 3.1.1 has no way to say "slow down")')
  t.equal((await will).payload.toString(), 'gone', 'its will is published all the same')
  t.ok(gateway.stats.dropped.rateLimited >= 1)
  // HTTP: per address, 429 RATE_LIMITED.
  const answers = await Promise.all(Array.from({ length: 30 }, () => postJson(`${urls.http}/api/publish`, { topic: 'flood/http', payload: 'x' })))
  const statuses = answers.map((r) => r.status)
  const limited = statuses.filter((s) => s === 429).length
  const ok = statuses.filter((s) => s === 200).length
  t.ok(ok >= 4 && ok <= 12, `about the burst (twice the rate) goes through (${ok} of 30 at once)`)
  t.equal(ok + limited, 30, `the rest get 429 (${limited})`)
  t.same(answers.find((r) => r.status === 429)?.json.code, 'RATE_LIMITED', 'with the RATE_LIMITED code')
  await assertHealthy(t, urls, 'floods on MQTT and HTTP')
})

t.test('MQTT 3.1.1 rules at CONNECT and PUBLISH', async (t) => {
  const { urls } = await startGateway(t)
  const port = portOf(urls.mqtt)
  // mqtt-packet will not write this one: by hand, flags 0 (CleanSession 0), an empty id.
  const emptyUnclean = Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 30, 0, 0])
  t.equal(await connectResult(port, emptyUnclean), 2, '[MQTT-3.1.3-8] an empty client id with CleanSession 0: CONNACK 2')
  t.equal(await connectResult(port, connectPacket('', { clean: true })), 0, '[MQTT-3.1.3-6] an empty client id with CleanSession 1: accepted')
  t.equal(await connectResult(port, connectPacket('x'.repeat(300))), 2, 'a 300-byte client id: CONNACK 2')
  t.equal(await connectResult(port, connectPacket('ws-0123abcd')), 2, 'an id of the form the hub gives its clients: CONNACK 2')
  t.equal(await connectResult(port, connectPacket('a\u0000b')), 'closed', '[MQTT-1.5.3-2] NUL in the client id: closed')
  t.equal(await connectResult(port, connectPacket('w', { will: { topic: 'a/#', payload: Buffer.from('x'), qos: 0, retain: false } })), 'closed', '[MQTT-3.3.2-2] a wildcard in the will topic: closed')
  for (const [what, topic] of [['NUL', 'a/\u0000/b'], ['+', 'a/+/b'], ['#', 'a/#']] as const) {
    const c = new RawConn(port)
    t.teardown(() => c.destroy())
    await c.opened
    c.write(connectPacket(`pub-${what.charCodeAt(0)}`))
    await c.waitBytes(4, 5000)
    c.write(generate({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 0, retain: false, dup: false } as Packet))
    t.ok(await c.closedWithin(3000), `a PUBLISH topic with ${what}: the connection is closed`)
  }
  const early = new RawConn(port)
  t.teardown(() => early.destroy())
  await early.opened
  early.write(generate({ cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 0, retain: false, dup: false } as Packet))
  t.ok(await early.closedWithin(3000), '[MQTT-3.1.0-1] a PUBLISH before CONNECT: closed')
  await assertHealthy(t, urls, 'CONNECT and PUBLISH rule breaks')
})

/** A raw WebSocket that never answers pings (a peer that vanished). */
async function deadWs (url: string, protocol?: string): Promise<RawConn> {
  const u = new URL(url)
  const c = new RawConn(Number(u.port))
  await c.opened
  const key = randomBytes(16).toString('base64')
  c.write(Buffer.from(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`))
  await c.waitBytes(12, 5000)
  return c
}

t.test('dead peers are dropped: /ws and MQTT/WS by ping, MQTT by keepalive', async (t) => {
  const heartbeatMs = 500
  const { urls } = await startGateway(t, { heartbeatMs })
  const hub = await deadWs(urls.ws)
  t.teardown(() => hub.destroy())
  const hubAt = Date.now()
  const mqttWs = await deadWs(urls['mqtt-ws'], 'mqtt')
  t.teardown(() => mqttWs.destroy())
  const mqttWsAt = Date.now()
  const tcp = new RawConn(portOf(urls.mqtt))
  t.teardown(() => tcp.destroy())
  await tcp.opened
  tcp.write(connectPacket('silent', { keepalive: 1 }))
  await tcp.waitBytes(4, 5000)
  const tcpAt = Date.now()
  t.ok(await hub.closedWithin(heartbeatMs * 3 + 500), '/ws: a peer that stops answering pings is dropped')
  t.ok(await mqttWs.closedWithin(heartbeatMs * 3 + 500), 'MQTT/WS: likewise')
  t.ok(await tcp.closedWithin(3000), 'MQTT/TCP: silent past 1.5 x keepalive, dropped')
  const hubMs = (hub.closedAt as number) - hubAt
  const wsMs = (mqttWs.closedAt as number) - mqttWsAt
  const tcpMs = (tcp.closedAt as number) - tcpAt
  t.ok(hubMs <= heartbeatMs * 2 + 300, `/ws dropped after ${hubMs} ms (at most two ${heartbeatMs} ms intervals)`)
  t.ok(tcpMs >= 1400 && tcpMs <= 2500, `MQTT dropped after ${tcpMs} ms (keepalive 1 s x 1.5)`)
  t.comment(`dead peer dropped after: /ws ${hubMs} ms, MQTT/WS ${wsMs} ms (heartbeat ${heartbeatMs} ms: between one and two intervals); MQTT/TCP ${tcpMs} ms (keepalive 1 s)`)
})
