// The PUBACK/PUBCOMP of a copy the encode-once path sent unstored skips the store; every
// other ack (persistent sessions, the queue Aedes empties at CONNECT) reaches it.
import t from 'tap'
import type { Client } from 'aedes'
import { skipAckLookups } from '../../../../src/engine/internals/index.js'

t.test('skipAckLookups answers only the ids it is told were not stored', async (t) => {
  const asked: number[] = []
  const store = {
    async outgoingClearMessageId (_client: unknown, packet: { messageId: number }) { asked.push(packet.messageId); return { stored: packet.messageId } }
  }
  const unstored = new Set([7, 9])
  skipAckLookups(store, (_c, id) => unstored.delete(id))
  const client = { id: 'c' } as unknown as Client
  t.equal(await store.outgoingClearMessageId(client, { messageId: 7 }), undefined, 'an unstored id: nothing, at once')
  t.same(asked, [], 'the store was not asked')
  t.same(await store.outgoingClearMessageId(client, { messageId: 8 }), { stored: 8 }, 'any other id goes to the store')
  t.same(await store.outgoingClearMessageId(client, { messageId: 7 }), { stored: 7 }, 'an id answered once goes to the store the next time')
  t.same(asked, [8, 7])
})

t.test('skipAckLookups leaves a persistence without the method alone', async (t) => {
  const store = {}
  skipAckLookups(store, () => true)
  t.same(store, {})
})
