// One suite for every HistoryStore, as MQTT.js runs one abstract suite against every
// store: the embedded log (LevelDB on disk, and memory) and the Redis log of a cluster
// (a real redis-server). Each store is written through its own write path (numbered at
// delivery, or at ingress) and must read back the same way.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { Redis } from 'ioredis'
import { HistoryLog } from '../../../../src/core/history/history-log.js'
import { RedisHistory } from '../../../../src/core/history/redis-history.js'
import type { HistoryStore, NewHistoryRecord } from '../../../../src/core/history/history-store.js'
import { startRedis } from '../../../helpers/cluster.js'

interface Subject {
  store: HistoryStore
  /** Writes one record the way the gateway does for this store; resolves with its seq once stored. */
  put (record: NewHistoryRecord): Promise<number>
}

type Factory = (t: Test, opts: { maxPerTopic: number }) => Promise<Subject>

const embedded = (store: HistoryLog): Subject => ({
  store,
  async put (record) {
    const { seq, stored } = store.append(record)
    await stored
    return seq
  }
})

const factories: Record<string, Factory> = {
  async 'HistoryLog on LevelDB (disk)' (t, opts) {
    const dir = mkdtempSync(join(tmpdir(), 'fusion-hs-'))
    const db = new Level<string, Buffer>(join(dir, 'store'), { keyEncoding: 'utf8', valueEncoding: 'buffer' })
    await db.open()
    const store = await HistoryLog.open(db, opts)
    t.teardown(async () => { await store.close(); await db.close(); rmSync(dir, { recursive: true, force: true }) })
    return embedded(store)
  },
  async 'HistoryLog in memory (--memory)' (t, opts) {
    const db = new MemoryLevel<string, Buffer>({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
    await db.open()
    const store = await HistoryLog.open(db as never, opts)
    t.teardown(async () => { await store.close(); await db.close() })
    return embedded(store)
  },
  async 'RedisHistory (cluster)' (t, opts) {
    const redis = await startRedis(t)
    const db = new Redis(redis.url, { lazyConnect: false })
    const pub = new Redis(redis.url, { lazyConnect: false })
    const store = new RedisHistory(db, pub, () => true, { ...opts, prefix: `test:${Math.random().toString(36).slice(2)}:` })
    t.teardown(async () => { await store.close(); db.disconnect(); pub.disconnect() })
    let n = 0
    return {
      store,
      put: (record) => store.appendAndPublish(`id-${n++}`, 'test-channel', Buffer.from('m'), '\u0000seq\u0000', record)
    }
  }
}

const NOW = Date.now()
const rec = (topic: string, text: string, extra: Partial<NewHistoryRecord> = {}): NewHistoryRecord =>
  ({ topic, payload: text, from: 'ann', via: 'ws', ts: NOW, ...extra })

for (const [name, make] of Object.entries(factories)) {
  t.test(name, async (t) => {
    t.test('numbers per topic from 1, reads oldest first', async (t) => {
      const { store, put } = await make(t, { maxPerTopic: 100 })
      t.equal(store.lastSeq('a'), 0, 'an empty topic has lastSeq 0')
      t.same(await store.last('a', 10), [])
      const seqs = [await put(rec('a', 'one')), await put(rec('a', 'two')), await put(rec('b', 'other')), await put(rec('a', 'three'))]
      t.same(seqs, [1, 2, 1, 3])
      t.equal(store.lastSeq('a'), 3)
      t.same((await store.last('a', 10)).map((r) => [r.seq, r.payload]), [[1, 'one'], [2, 'two'], [3, 'three']])
      t.same((await store.last('a', 2)).map((r) => r.payload), ['two', 'three'], 'last N are the newest N, oldest first')
      t.same((await store.since('a', 1, 10)).map((r) => r.seq), [2, 3], 'since is exclusive')
      t.same((await store.since('a', 0, 1)).map((r) => r.seq), [1], 'since honours its limit from the oldest')
      t.same(await store.since('a', 3, 10), [], 'nothing after the last')
    })
    t.test('a record reads back whole: binary as base64, a claimed sender', async (t) => {
      const { store, put } = await make(t, { maxPerTopic: 100 })
      const r = rec('bin', Buffer.from([0xff, 0x00]).toString('base64'), { encoding: 'base64', from: 'dev', via: 'mqtt', claimedFrom: 'alice' })
      await put(r)
      t.same(await store.last('bin', 1), [{ seq: 1, ...r }])
    })
    t.test('keeps at most maxPerTopic records a topic, the newest', async (t) => {
      const { store, put } = await make(t, { maxPerTopic: 5 })
      for (let i = 1; i <= 12; i++) await put(rec('cap', `m${i}`))
      await store.flushed()
      const kept = await store.last('cap', 100)
      t.ok(kept.length <= 5 && kept.length >= 5, `5 kept (got ${kept.length})`)
      t.equal(kept.at(-1)?.payload, 'm12', 'the newest is kept')
      t.equal(store.lastSeq('cap'), 12, 'numbers go on')
    })
    t.test('close is safe twice and refuses further writes', async (t) => {
      const { store, put } = await make(t, { maxPerTopic: 5 })
      await store.close()
      await store.close()
      await t.rejects(put(rec('x', 'late')), { code: 'SHUTTING_DOWN' })
    })
  })
}
