import t from 'tap'
import { TopicTrie } from '../../../src/engine/retained-index.js'

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
