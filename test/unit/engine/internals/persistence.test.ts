// The embedded persistence on disk: aedes-persistence-level with its delWill reduced to a
// delete (internals: level-del-will).
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import type { AbstractLevel } from 'abstract-level'
import { createEmbeddedPersistence } from '../../../../src/engine/internals/index.js'

interface WillStore {
  setup (broker: { id: string }): Promise<void>
  putWill (client: { id: string }, packet: object): Promise<void>
  getWill (client: { id: string }): Promise<unknown>
  delWill (client: { id: string }): Promise<unknown>
}

t.test('delWill deletes the stored will without reading it first', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-persist-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' }) as unknown as AbstractLevel<any, any, any>
  await db.open()
  t.teardown(() => db.close())
  const p = createEmbeddedPersistence(db) as WillStore
  await p.setup({ id: 'broker-1' })
  const odd = { id: 'dev/1 ü%' } // the key is encoded as aedes-persistence-level encodes it
  await p.putWill(odd, { topic: 'presence/dev1', payload: Buffer.from('offline'), qos: 1, retain: true })
  await p.putWill({ id: 'other' }, { topic: 'presence/other', payload: Buffer.from('offline'), qos: 1, retain: true })
  t.match(await p.getWill(odd), { topic: 'presence/dev1' })
  let reads = 0
  const get = db.get.bind(db)
  db.get = ((...args: Parameters<typeof db.get>) => { reads++; return get(...args) }) as typeof db.get
  await p.delWill(odd)
  t.equal(reads, 0, 'no read')
  db.get = get
  t.equal(await p.getWill(odd), undefined, 'the will is gone')
  t.match(await p.getWill({ id: 'other' }), { topic: 'presence/other' }, 'another client\'s will stays')
  await p.delWill({ id: 'never-had-one' })
  t.pass('deleting a will that is not there is fine')
})
