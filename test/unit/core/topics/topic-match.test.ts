// Every topic matcher in the gateway answers the shared table the same way.
import t from 'tap'
import { MATCH_CASES } from './match-cases.js'
import { topicMatches } from '../../../../src/core/topics/topic-match.js'
import { FilterSet } from '../../../../src/core/topics/filter-set.js'
import { TopicTrie } from '../../../../src/engine/retained-index.js'

const implementations: Record<string, (filter: string, topic: string) => boolean> = {
  'topicMatches (ACL, delivery QoS)': topicMatches,
  'FilterSet (logged topics)': (filter, topic) => new FilterSet([filter]).matches(topic),
  'TopicTrie (retained index)': (filter, topic) => {
    const trie = new TopicTrie()
    trie.add(topic)
    return [...trie.match(filter)].includes(topic)
  }
}

for (const [name, matches] of Object.entries(implementations)) {
  t.test(name, async (t) => {
    for (const [filter, topic, expected] of MATCH_CASES) {
      t.equal(matches(filter, topic), expected, `${filter} ${expected ? 'matches' : 'does not match'} ${topic}`)
    }
  })
}

t.test('a FilterSet of many filters answers as any one of them does', async (t) => {
  const filters = [...new Set(MATCH_CASES.map(([f]) => f))]
  const set = new FilterSet(filters)
  for (const topic of new Set(MATCH_CASES.map(([, tp]) => tp))) {
    t.equal(set.matches(topic), filters.some((f) => topicMatches(f, topic)), topic)
  }
})
