// msgpack-lite ships no types; the retained index only decodes what aedes-persistence-level encoded.
declare module 'msgpack-lite' {
  export function decode (buf: Buffer): any
  export function encode (value: unknown): Buffer
}
