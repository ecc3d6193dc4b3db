import { createRequire } from 'node:module'

// mqemitter-redis 7 sends each message as msgpack {id, msg} on the Redis channel named by
// the topic, and every node drops an id it has seen in the last minute
// (mqemitter-redis.js). Its close() ends the connections it was given and then calls its
// own `_close`, which the cluster emitter calls itself after ending them its own way.

// msgpack-lite resolved from mqemitter-redis: the copy that decodes what we encode.
const requireFromEmitter = createRequire(createRequire(import.meta.url).resolve('mqemitter-redis'))
const msgpack = requireFromEmitter('msgpack-lite') as { encode (value: unknown): Buffer }

/** The bytes mqemitter-redis would publish for message `msg` with dedupe id `id`. */
export function emitterEnvelope (id: string, msg: unknown): Buffer { return msgpack.encode({ id, msg }) }

/** Finishes closing an mqemitter-redis whose connections were already ended (its `_close`). */
export function finishEmitterClose (mq: object, cb: () => void): void {
  (mq as { _close (cb: () => void): void })._close(cb)
}
