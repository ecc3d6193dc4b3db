import t from 'tap'
import { startGateway, openHub } from '../helpers/gateway.js'

t.test('a /ws client gets welcome then history', async (t) => {
  const { urls } = await startGateway(t)
  const c = await openHub(t, urls.ws, { name: 'alice' })
  const w = await c.waitJson('welcome')
  t.equal(w.name, 'alice')
  await c.waitJson('history')
})
