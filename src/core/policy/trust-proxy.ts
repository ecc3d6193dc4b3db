import { BlockList, isIP, type Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import { FusionError } from '../errors.js'

/**
 * `--trust-proxy`: the proxies (addresses or CIDRs) whose word we take for a client's
 * address. From those, and only those, the address comes from `X-Forwarded-For` on
 * HTTP and WebSocket upgrades and from the PROXY protocol (v1 and v2) on MQTT/TCP; from
 * anyone else those are ignored (a header) or not looked for (the PROXY preamble), so a
 * client cannot pick its own address to escape the per-address limits.
 */
export interface TrustedProxies {
  /** True when `address` (the socket's peer) is a trusted proxy. */
  trusts (address: string | undefined): boolean
}

/** Longest `X-Forwarded-For` we read: past it the header is ignored (peer address used). */
export const MAX_FORWARDED_FOR = 2048
/** Most hops of `X-Forwarded-For` we walk. */
export const MAX_FORWARDED_HOPS = 32

const CLIENT_ADDRESS = Symbol('fusion.clientAddress')

function plain (address: string): string {
  // Node reports IPv4 peers of a dual-stack listener as IPv4-mapped IPv6.
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/** Parses `--trust-proxy`: comma-separated addresses and CIDRs (`127.0.0.1,10.0.0.0/8,::1`). */
export function parseTrustedProxies (spec: string | undefined): TrustedProxies | undefined {
  const items = (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  if (items.length === 0) return undefined
  const list = new BlockList()
  for (const item of items) {
    const [addr, bits, extra] = item.split('/')
    const family = isIP(addr ?? '')
    if (!family || extra !== undefined) throw new FusionError('BAD_OPTION', `--trust-proxy: ${item.slice(0, 60)} is not an address or CIDR`)
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (bits === undefined) { list.addAddress(addr as string, type); continue }
    const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : -1
    if (prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new FusionError('BAD_OPTION', `--trust-proxy: ${item.slice(0, 60)} has a bad prefix length`)
    list.addSubnet(addr as string, prefix, type)
  }
  return {
    trusts (address) {
      if (!address) return false
      const a = plain(address)
      const family = isIP(a)
      return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6')
    }
  }
}

/**
 * The client's address for an HTTP request or upgrade: the peer, unless the peer is a
 * trusted proxy with an `X-Forwarded-For`; then the rightmost address in it that is not
 * itself a trusted proxy (each proxy appends the address it saw, so everything left of
 * the first untrusted hop could have been written by the client). Linear in a header of
 * at most MAX_FORWARDED_FOR characters; a malformed hop ends the walk at the last good one.
 */
export function forwardedAddress (peer: string | undefined, header: string | string[] | undefined, trusted: TrustedProxies | undefined): string | undefined {
  if (!trusted || !trusted.trusts(peer)) return peer
  // Several headers are one list, in order (RFC 9110 5.3).
  const value = Array.isArray(header) ? header.join(',') : header
  if (value === undefined || value.length > MAX_FORWARDED_FOR) return peer
  const hops = value.split(',', MAX_FORWARDED_HOPS + 1)
  if (hops.length > MAX_FORWARDED_HOPS) return peer
  let client = peer
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = plain((hops[i] as string).trim())
    if (!isIP(hop)) break
    client = hop
    if (!trusted.trusts(hop)) break
  }
  return client
}

/** Records the address a PROXY header gave for `socket` (read by clientAddressOf). */
export function setClientAddress (socket: Socket, address: string): void {
  (socket as unknown as Record<symbol, string>)[CLIENT_ADDRESS] = address
}

/** The client's address for a raw socket: what its PROXY header said, else its peer. */
export function clientAddressOf (socket: Socket): string | undefined {
  return (socket as unknown as Record<symbol, string | undefined>)[CLIENT_ADDRESS] ?? socket.remoteAddress
}

/** The client's address for an upgrade request: X-Forwarded-For from a trusted proxy, else the peer. */
export function requestAddress (req: IncomingMessage, trusted: TrustedProxies | undefined): string | undefined {
  return forwardedAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trusted)
}
