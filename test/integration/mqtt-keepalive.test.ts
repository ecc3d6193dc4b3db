import t from 'tap'
import { startGateway, openMqtt } from '../helpers/gateway.js'

t.test('a client with keepalive 0 (no keepalive, [MQTT-3.1.2-24]) is accepted with CONNACK 0', async (t) => {
  const { urls } = await startGateway(t)
  for (const url of [urls.mqtt, urls['mqtt-ws']]) {
    const c = await openMqtt(t, url, { keepalive: 0 })
    t.ok(c.connected, `connected over ${new URL(url).protocol}`)
    await c.publishAsync('ka/zero', 'still works', { qos: 1 })
    await c.endAsync()
  }
})
