import type { Socket } from 'node:net'

/**
 * The PROXY protocol (HAProxy's "PROXY protocol" spec, versions 1 and 2): a trusted proxy
 * starts each TCP connection with a preamble naming the client's address. Only read on
 * sockets from a trusted proxy (`--trust-proxy`); anyone else's bytes go to MQTT as they are.
 */

/** v1: at most 107 bytes, CRLF included (spec 2.1). */
export const V1_MAX = 107
/** v2: the 16-byte header plus an address block we accept up to this size (TLVs included). */
export const V2_MAX_BODY = 1024
/** A trusted proxy sends its preamble at once: past this it is cut. */
export const PROXY_HEADER_TIMEOUT_MS = 5000

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V1_SIG = Buffer.from('PROXY ')

/** What a complete preamble said: the client's address (undefined: LOCAL / UNKNOWN, keep the peer) and its length. */
export interface ProxyHeader { readonly address: string | undefined, readonly length: number }

/**
 * Parses a preamble at the start of `buf`: the header, `'more'` when more bytes are needed,
 * or `'bad'`. Linear in at most V1_MAX or 16 + V2_MAX_BODY bytes.
 */
export function parseProxyHeader (buf: Buffer): ProxyHeader | 'more' | 'bad' {
  if (buf.length === 0) return 'more'
  if (buf[0] === 0x0d) {
    const n = Math.min(buf.length, V2_SIG.length)
    if (!buf.subarray(0, n).equals(V2_SIG.subarray(0, n))) return 'bad'
    if (buf.length < 16) return 'more'
    const verCmd = buf[12] as number
    const famProto = buf[13] as number
    const len = buf.readUInt16BE(14)
    if (verCmd >> 4 !== 2 || len > V2_MAX_BODY) return 'bad'
    if (buf.length < 16 + len) return 'more'
    const cmd = verCmd & 0x0f
    if (cmd === 0) return { address: undefined, length: 16 + len } // LOCAL: the proxy's own health check
    if (cmd !== 1) return 'bad'
    const family = famProto >> 4
    if (family === 1 && len >= 12) return { address: [...buf.subarray(16, 20)].join('.'), length: 16 + len }
    if (family === 2 && len >= 36) {
      const groups: string[] = []
      for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(16 + i * 2).toString(16))
      return { address: groups.join(':'), length: 16 + len }
    }
    if (family === 0) return { address: undefined, length: 16 + len } // AF_UNSPEC
    return 'bad'
  }
  if (buf[0] === 0x50) {
    const n = Math.min(buf.length, V1_SIG.length)
    if (!buf.subarray(0, n).equals(V1_SIG.subarray(0, n))) return 'bad'
    const end = buf.indexOf('\r\n')
    if (end < 0) return buf.length >= V1_MAX ? 'bad' : 'more'
    if (end + 2 > V1_MAX) return 'bad'
    const parts = buf.toString('latin1', 0, end).split(' ')
    if (parts[1] === 'UNKNOWN') return { address: undefined, length: end + 2 }
    if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return 'bad'
    const src = parts[2] as string
    const ok = parts[1] === 'TCP4' ? /^\d{1,3}(\.\d{1,3}){3}$/.test(src) : /^[0-9a-fA-F:.]{2,45}$/.test(src)
    if (!ok || !/^\d{1,5}$/.test(parts[4] as string)) return 'bad'
    return { address: src, length: end + 2 }
  }
  return 'bad'
}

/**
 * Reads the preamble from `socket` (a trusted proxy's), puts back any bytes after it, and
 * calls `done` with the client's address (undefined: keep the peer's), or destroys the
 * socket when the preamble is missing, malformed or late.
 */
export function readProxyHeader (socket: Socket, done: (address: string | undefined) => void): void {
  let buf: Buffer = Buffer.alloc(0)
  const timer = setTimeout(() => socket.destroy(), PROXY_HEADER_TIMEOUT_MS)
  const finish = (): void => { clearTimeout(timer); socket.off('data', onData); socket.off('close', onClose) }
  const onClose = (): void => { clearTimeout(timer) }
  const onData = (chunk: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
    const r = parseProxyHeader(buf)
    if (r === 'more') return
    finish()
    if (r === 'bad') { socket.destroy(); return }
    socket.pause()
    const rest = buf.subarray(r.length)
    if (rest.length) socket.unshift(rest)
    done(r.address)
  }
  socket.on('data', onData)
  socket.once('close', onClose)
}
