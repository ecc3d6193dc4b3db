import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { HistoryLog } from '../../../../src/core/history/history-log.js'

// The history log on a real on-disk LevelDB, as the gateway opens it.
async function openDb (t: Test): Promise<{ dir: string, open: () => Promise<Level<string, Buffer>> }> {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-history-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return {
    dir,
    async open () {
      const db = new Level<string, Buffer>(join(dir, 'store'), { keyEncoding: 'utf8', valueEncoding: 'buffer' })
      await db.open()
      return db
    }
  }
}

const rec = (topic: string, text: string): { topic: string, payload: string, from: string, via: string, ts: number } =>
  ({ topic, payload: text, from: 'ann', via: 'ws', ts: Date.now() })

t.test('appends made while a write is in flight are stored in the next one, in order', async (t) => {
  const store = await openDb(t)
  const db = await store.open()
  let batches = 0
  const batch = db.batch.bind(db)
  ;(db as any).batch = (...args: any[]) => { batches++; return (batch as any)(...args) }
  const log = await HistoryLog.open(db)

  const first = log.append(rec('chat/a', 'm0'))
  await new Promise((resolve) => setImmediate(resolve)) // the first write is now under way
  const rest = Array.from({ length: 500 }, (_, i) => log.append(rec(i % 2 ? 'chat/a' : 'chat/b', `m${i + 1}`)))
  await Promise.all([first.stored, ...rest.map((r) => r.stored)])
  t.equal(batches, 2, 'one write for the first append, one for the 500 that came while it was being written')

  const a = await log.since('chat/a', 0, 1000)
  const b = await log.since('chat/b', 0, 1000)
  t.same(a.map((r) => r.seq), Array.from({ length: 251 }, (_, i) => i + 1), 'chat/a: sequence 1..251, no gaps')
  t.same(b.map((r) => r.seq), Array.from({ length: 250 }, (_, i) => i + 1), 'chat/b: sequence 1..250, no gaps')
  t.same(a.slice(0, 3).map((r) => r.payload), ['m0', 'm2', 'm4'], 'in the order appended')
  await log.close()
  await db.close()
})

t.test('a read right after an append sees it, without waiting for the next turn', async (t) => {
  const store = await openDb(t)
  const db = await store.open()
  const log = await HistoryLog.open(db)
  const { seq } = log.append(rec('chat/r', 'hello'))
  const last = await log.last('chat/r', 10)
  t.same(last.map((r) => [r.seq, r.payload]), [[seq, 'hello']])
  await log.close()
  await log.close() // safe twice
  await db.close()
})

t.test('sequence numbers and retention survive a reopen', async (t) => {
  const store = await openDb(t)
  let db = await store.open()
  let log = await HistoryLog.open(db, { maxPerTopic: 5 })
  for (let i = 1; i <= 12; i++) {
    const { stored } = log.append(rec('chat/k', `m${i}`))
    if (i % 4 === 0) await stored // several batches, some with deletions
  }
  await log.close()
  await db.close()

  db = await store.open()
  log = await HistoryLog.open(db, { maxPerTopic: 5 })
  t.equal(log.lastSeq('chat/k'), 12, 'the last sequence is read back')
  t.same((await log.since('chat/k', 0, 100)).map((r) => r.payload), ['m8', 'm9', 'm10', 'm11', 'm12'], 'only the newest 5 are kept')
  const next = log.append(rec('chat/k', 'm13'))
  t.equal(next.seq, 13, 'numbering goes on, never reuses a number')
  await next.stored
  await log.close()
  await db.close()
})

t.test('a store error reaches every waiting publisher as STORE_FAILED, and the log goes on', async (t) => {
  const store = await openDb(t)
  const db = await store.open()
  const log = await HistoryLog.open(db)
  const batch = db.batch.bind(db)
  let fail = true
  ;(db as any).batch = (...args: any[]) => fail ? Promise.reject(new Error('IO error: No space left on device')) : (batch as any)(...args)
  const appended = [log.append(rec('chat/f', 'a')), log.append(rec('chat/f', 'b'))]
  for (const { stored } of appended) await t.rejects(stored, { code: 'STORE_FAILED' })
  await log.flushed() // settles, does not hang or throw
  fail = false
  const ok = log.append(rec('chat/f', 'c'))
  await ok.stored
  t.same((await log.since('chat/f', 0, 10)).map((r) => r.payload), ['c'], 'the failed ones are not stored; the next one is')
  await log.close()
  await db.close()
})
