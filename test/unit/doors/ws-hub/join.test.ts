import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { readJoin } from '../../../../src/doors/ws-hub/join.js'
import { createDefaultAcl, type Acl } from '../../../../src/core/policy/acl.js'
import { FusionError } from '../../../../src/core/errors.js'

const limits = { maxTopicLength: 1024, maxTopicLevels: 32 }
const req = (url: string, cookie?: string): IncomingMessage => ({ url, headers: cookie ? { cookie } : {} }) as IncomingMessage
const deps = (acl: Acl = createDefaultAcl(), identify?: (r: IncomingMessage) => string | FusionError) => ({ acl, limits, identify, guestName: () => 'guest-1' })

t.test('name from ?name=, else the cookie, else a guest name; cleaned', async (t) => {
  t.equal(readJoin(req('/ws?name=al%0A%1Bice'), 'ws-1', deps()).name, 'alice')
  t.equal(readJoin(req('/ws', 'fusion_name=yan'), 'ws-1', deps()).name, 'yan')
  t.equal(readJoin(req('/ws?name=%0A'), 'ws-1', deps()).name, 'guest-1')
})

t.test('with auth on, the proved user is the name; a bad token refuses the join', async (t) => {
  t.equal(readJoin(req('/ws?name=mallory'), 'ws-1', deps(undefined, () => 'bob')).name, 'bob')
  t.throws(() => readJoin(req('/ws'), 'ws-1', deps(undefined, () => new FusionError('NOT_AUTHORIZED', 'no token'))), { code: 'NOT_AUTHORIZED' })
})

t.test('room, format, presence and since', async (t) => {
  const j = readJoin(req('/ws?room=kitchen&format=text&presence=0&since=12'), 'ws-1', deps())
  t.match(j, { room: 'kitchen', format: 'text', presence: false, since: 12 })
  t.equal(readJoin(req('/ws?room=a%2B'), 'ws-1', deps()).room, 'lobby', 'a room that is no topic name falls back to the lobby')
  t.equal(readJoin(req('/ws?since=99999999999999999999'), 'ws-1', deps()).since, undefined, 'an absurd since is ignored')
})

t.test('joining is a subscription: the ACL can refuse the room, and presence needs read rights', async (t) => {
  const acl: Acl = {
    checkPublish () {},
    checkSubscribe (_who, filter) { if (filter === 'chat/secret' || filter === 'presence/#') throw new FusionError('ACL_DENIED', `subscribe to ${filter} is not allowed`) }
  }
  t.throws(() => readJoin(req('/ws?room=secret'), 'ws-1', deps(acl)), { code: 'ACL_DENIED' })
  t.equal(readJoin(req('/ws?room=open'), 'ws-1', deps(acl)).presence, false)
})
