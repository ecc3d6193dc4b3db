import t from 'tap'
import { Aedes } from 'aedes'
import { MemoryLevel } from 'memory-level'
import { indexRetained, TopicTrie } from '../../../src/engine/retained-index.js'
import { createEmbeddedPersistence, levelRetained, levelRetainedTopics } from '../../../src/engine/internals/index.js'
import { brokerPublish, closeAtTeardown, packetClient, type T } from '../../helpers/mqtt-packets.js'

t.test('the retained trie matches filters as MQTT 3.1.1 does', async (t) => {
  const trie = new TopicTrie()
  for (const topic of ['a', 'a/b', 'a/b/c', 'a//c', 'x/y', '$SYS/broker/load', 'presence/dev1', 'presence/dev2']) trie.add(topic)
  const m = (f: string): string[] => [...trie.match(f)].sort()
  t.same(m('a/b'), ['a/b'], 'exact')
  t.same(m('a/+'), ['a/b'], '+ takes one level')
  t.same(m('a/+/c'), ['a//c', 'a/b/c'], '+ matches an empty level')
  t.same(m('a/#'), ['a', 'a//c', 'a/b', 'a/b/c'], '# matches the parent and everything below')
  t.same(m('#'), ['a', 'a//c', 'a/b', 'a/b/c', 'presence/dev1', 'presence/dev2', 'x/y'], '# skips $ topics [MQTT-4.7.2-1]')
  t.same(m('+/broker/load'), [], '+ first skips $ topics')
  t.same(m('$SYS/#'), ['$SYS/broker/load'], 'an explicit $ filter matches')
  t.same(m('presence/+'), ['presence/dev1', 'presence/dev2'])
  t.same(m('nothing/here'), [])
  trie.remove('a/b/c')
  trie.remove('a/b')
  t.same(m('a/#'), ['a', 'a//c'], 'removed topics are gone')
  t.equal(trie.size, 6)
  trie.remove('not/there')
  t.equal(trie.size, 6, 'removing an unknown topic changes nothing')
})

t.test('a branch emptied by removals is pruned, and a topic added again below it is found', async (t) => {
  const trie = new TopicTrie()
  for (let i = 0; i < 100; i++) trie.add(`presence/dev${i}`)
  for (let i = 0; i < 100; i++) trie.remove(`presence/dev${i}`)
  t.equal(trie.size, 0)
  t.same([...trie.match('#')], [], 'nothing left to match')
  t.same([...trie.match('presence/+')], [])
  trie.add('presence/dev7')
  trie.add('presence/dev7/battery')
  t.same([...trie.match('presence/#')].sort(), ['presence/dev7', 'presence/dev7/battery'])
  trie.remove('presence/dev7')
  t.same([...trie.match('presence/+/battery')], ['presence/dev7/battery'], 'a node that still has children stays')
})

t.test('with --memory the index holds the one copy of a retained message (the persistence keeps none)', async (t) => {
  const local = createEmbeddedPersistence(undefined)
  await indexRetained(local)
  const p = local as unknown as { storeRetained (packet: object): Promise<void>, createRetainedStream (f: string): AsyncIterable<{ topic: string, payload: Buffer }> }
  await p.storeRetained({ cmd: 'publish', topic: 'room/a', payload: Buffer.from('one'), qos: 0, retain: true })
  await p.storeRetained({ cmd: 'publish', topic: 'room/b', payload: Buffer.from('two'), qos: 0, retain: true })
  await p.storeRetained({ cmd: 'publish', topic: 'room/a', payload: Buffer.alloc(0), qos: 0, retain: true })
  const seen: string[] = []
  for await (const m of p.createRetainedStream('room/#')) seen.push(`${m.topic}=${m.payload.toString()}`)
  t.same(seen, ['room/b=two'], 'stored, replaced and cleared through the index')
  // The persistence's own Map (aedes-persistence 11, #retained) is reachable only through
  // its own createRetainedStream, which the index replaced: read it from the prototype.
  const own = Object.getPrototypeOf(local).createRetainedStream.call(local, '#') as AsyncIterable<unknown>
  const kept: unknown[] = []
  for await (const m of own) kept.push(m)
  t.same(kept, [], 'the persistence kept no second copy')
})

// ---- The index in front of a real persistence, packet by packet over in-memory streams
// (internals: retained-index). Each case also runs on the stock persistence.

type Db = MemoryLevel<string, Buffer>

/** A LevelDB in memory, as openStore makes it for the embedded store, counting full scans of `retained:`. */
function levelDb (): { db: Db, scans: () => number } {
  const db = new MemoryLevel<string, Buffer>({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
  let scans = 0
  const values = db.values.bind(db) as (opts?: { gte?: string }) => unknown
  ;(db as unknown as { values: typeof values }).values = (opts?: { gte?: string }) => {
    if (opts?.gte === 'retained:') scans++
    return values(opts)
  }
  return { db, scans: () => scans }
}

async function brokerOn (t: T, db: Db, indexed: boolean): Promise<Aedes> {
  const persistence = createEmbeddedPersistence(db as never)
  if (indexed) await indexRetained(persistence, db as never)
  return closeAtTeardown(t, await Aedes.createBroker({ persistence }))
}

/** What a new client subscribing to `filter` is sent as retained. */
async function retainedFor (t: T, broker: Aedes, filter: string, expect: number): Promise<string[]> {
  const c = packetClient(t, broker)
  await c.connect(`c${Math.random()}`)
  await c.subscribe([{ topic: filter, qos: 0 }])
  // Retained messages are written after the SUBACK, from the store; wait for as many as expected.
  for (let i = 0; i < expect; i++) await c.waitFor(() => c.publishes().length > i, `retained message ${i + 1} on ${filter}`)
  await c.ping()
  return c.publishes().filter((p) => p.retain).map((p) => `${p.topic}=${String(p.payload)}`).sort()
}

t.test("aedes-persistence-level's key format is what the index reads (retained:<topic>, msgpack)", async (t) => {
  const { db } = levelDb()
  const stock = createEmbeddedPersistence(db as never) as { storeRetained (p: object): Promise<void> }
  await stock.storeRetained({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('v'), qos: 1, retain: true, brokerId: 'x', brokerCounter: 1 })
  const topics: string[] = []
  for await (const topic of levelRetainedTopics(db as never)) topics.push(topic)
  t.same(topics, ['a/b'], 'the topic is read back from the key')
  const packet = await levelRetained(db as never, 'a/b')
  t.equal(packet?.topic, 'a/b')
  t.equal(String(packet?.payload), 'v', 'the value decodes as the packet')
  t.equal(await levelRetained(db as never, 'nope'), undefined)
})

t.test('SUBSCRIBE gets the matching retained messages from the index, without a scan', async (t) => {
  for (const indexed of [true, false]) {
    const { db, scans } = levelDb()
    const b = await brokerOn(t, db, indexed)
    for (const [topic, payload] of [['a/b', '1'], ['a/c', '2'], ['x/y', '3'], ['$SYS/q', '4'], ['a/b/c', '5']] as const) {
      await brokerPublish(b, { topic, payload, qos: 0, retain: true })
    }
    const before = scans()
    t.same(await retainedFor(t, b, 'a/+', 2), ['a/b=1', 'a/c=2'], `${indexed ? 'indexed' : 'stock'}: a/+`)
    if (indexed) t.same(await retainedFor(t, b, '#', 4), ['a/b/c=5', 'a/b=1', 'a/c=2', 'x/y=3'], 'indexed: # skips $SYS [MQTT-4.7.2-1]')
    // Stock aedes-persistence-level 9.2.0 hands `#` the `$` topics too; the index does not.
    else t.same(await retainedFor(t, b, '#', 5), ['$SYS/q=4', 'a/b/c=5', 'a/b=1', 'a/c=2', 'x/y=3'], 'stock: # also gets $SYS/q, against [MQTT-4.7.2-1]')
    await brokerPublish(b, { topic: 'a/c', payload: '', qos: 0, retain: true })
    t.same(await retainedFor(t, b, 'a/+', 1), ['a/b=1'], `${indexed ? 'indexed' : 'stock'}: an empty retained message clears the topic`)
    if (indexed) t.equal(scans() - before, 0, 'indexed: no scan of every retained message')
    else t.ok(scans() - before >= 3, 'stock: a scan of every retained message per SUBSCRIBE (the test can fail)')
  }
})

t.test('after a restart on the same store the index is rebuilt from its keys', async (t) => {
  const { db, scans } = levelDb()
  const first = await brokerOn(t, db, true)
  await brokerPublish(first, { topic: 'dev/1', payload: 'on', qos: 1, retain: true })
  await brokerPublish(first, { topic: 'dev/2', payload: 'off', qos: 1, retain: true })
  await new Promise<void>((resolve) => first.close(() => resolve()))
  const second = await brokerOn(t, db, true)
  const before = scans()
  t.same(await retainedFor(t, second, 'dev/+', 2), ['dev/1=on', 'dev/2=off'])
  t.equal(scans() - before, 0, 'answered from the rebuilt index')
})
