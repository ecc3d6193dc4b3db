#!/usr/bin/env node
// @ts-check
/**
 * The floor under the reconnect storm's drop phase (issue 14): how long a bare Node
 * `net` server, with nothing but a 'data' listener, holds its event loop when N of its
 * sockets are closed by their peers at once. libuv hands every ready socket of one poll
 * phase to JavaScript before timers or new requests run, so this is the least any
 * single-loop server on this machine and Node line can answer `/api/health` in while
 * 10,000 devices drop.
 *
 *   node bench/close-floor.mjs [--count 9000] [--reps 3]
 *
 * Sockets come from 50 loopback addresses (the fd limit here is 20,000: 2 x 9,000 fit).
 */
import { fork } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

if (process.argv[2] === '--child') {
  const srv = net.createServer((s) => { s.on('error', () => {}); s.on('data', () => {}) })
  srv.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => process.send?.(/** @type {net.AddressInfo} */ (srv.address()).port))
  let last = performance.now()
  let maxGap = 0
  setInterval(() => { const t = performance.now(); maxGap = Math.max(maxGap, t - last); last = t }, 1).unref()
  process.on('message', (m) => {
    if (m === 'reset') { maxGap = 0; last = performance.now() } else if (m === 'report') process.send?.({ maxGap, cpu: process.cpuUsage() })
  })
} else {
  const argv = process.argv.slice(2)
  const val = (/** @type {string} */ f, /** @type {number} */ d) => { const i = argv.indexOf(f); return i >= 0 ? Number(argv[i + 1]) : d }
  const count = Math.min(val('--count', 9000), 9500)
  const reps = Math.min(val('--reps', 3), 10)
  for (let rep = 1; rep <= reps; rep++) {
    const child = fork(fileURLToPath(import.meta.url), ['--child'])
    const ask = (/** @type {string} */ m) => new Promise((resolve) => { child.once('message', resolve); child.send(m) })
    const port = await new Promise((resolve) => child.once('message', resolve))
    /** @type {net.Socket[]} */
    const socks = []
    for (let i = 0; i < count; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, count - i) }, (_, k) => new Promise((resolve) => {
        const s = net.connect({ port: Number(port), host: '127.0.0.1', localAddress: `127.0.${1 + ((i + k) % 50)}.1` }, () => resolve(undefined))
        s.on('error', () => resolve(undefined))
        socks.push(s)
      })))
    }
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const before = /** @type {any} */ (await ask('report'))
    child.send('reset')
    for (const s of socks) s.destroy()
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const after = /** @type {any} */ (await ask('report'))
    const cpuMs = Math.round((after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1000)
    console.log(JSON.stringify({ rep, sockets: socks.length, longestLoopBlockMs: Math.round(after.maxGap), serverCpuMs: cpuMs }))
    child.kill()
  }
}
