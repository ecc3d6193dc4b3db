#!/usr/bin/env node
// @ts-check
/**
 * Profiles the gateway under one load-generator scenario: starts the built CLI with
 * `node --cpu-prof`, runs the scenario against the chosen doors, stops the gateway
 * (the profile is written on a clean exit) and prints where the CPU went, by
 * function and by module.
 *
 *   node bench/profile.mjs [--target gateway|aedes|wsb] [--pub mqtt-ws] [--sub mqtt-ws] [--scenario fanout|fanin|rate|connect] [--qos 0|1] [--disk] [--duration 5] [--count 2000] [--top 25]
 *
 * Doors: mqtt, mqtt-ws, ws. The .cpuprofile is kept in bench/results/ for Chrome
 * DevTools or speedscope.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { GATEWAY_BENCH_FLAGS, pinned, pinning } from './lib/servers.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const argv = process.argv.slice(2)
const val = (/** @type {string} */ f, /** @type {string} */ d) => { const i = argv.indexOf(f); return i >= 0 ? String(argv[i + 1]) : d }
const pubDoor = val('--pub', 'mqtt-ws')
const subDoor = val('--sub', pubDoor)
const scenario = val('--scenario', 'fanout')
const duration = val('--duration', '5')
const top = Number(val('--top', '25'))
const pin = pinning()
const outDir = join(ROOT, 'bench/results', `profile-${Date.now()}`)
mkdirSync(outDir, { recursive: true })

const target = val('--target', 'gateway')
const serverArgs = target === 'aedes'
  ? [join(ROOT, 'bench/baselines/aedes-standalone.mjs')]
  : target === 'wsb'
    ? [join(ROOT, 'bench/baselines/ws-broadcast.mjs')]
    : [join(ROOT, 'dist/cli/main.js'), '--host', '127.0.0.1', '--http-port', '0', '--mqtt-port', '0',
        ...(argv.includes('--disk') ? ['--data-dir', mkdtempSync(join(tmpdir(), 'fusion-profile-'))] : ['--memory']), ...GATEWAY_BENCH_FLAGS]
const gwCmd = pinned(pin.server, process.execPath, ['--cpu-prof', '--cpu-prof-dir', outDir, ...serverArgs])
const gw = spawn(gwCmd.cmd, gwCmd.args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
/** @type {Record<string, string>} */
const urls = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('gateway not ready in 20 s')), 20_000)
  createInterface({ input: /** @type {import('node:stream').Readable} */ (gw.stdout) }).on('line', (line) => {
    if (!/^(mqtt-fusion|aedes-standalone|ws-broadcast) ready/.test(line)) return
    clearTimeout(timer)
    resolve(Object.fromEntries(line.split(' ').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])))
  })
})
const url = (/** @type {string} */ door) => (door === 'ws' && target === 'gateway' ? `${urls.ws}?presence=0` : String(urls[door]))
const lgArgs = scenario === 'connect'
  ? ['connect', '--url', url(pubDoor), '--count', val('--count', '2000'), '--hold', '0']
  : [scenario, '--pub', url(pubDoor), '--sub', url(subDoor), '--duration', duration, ...(argv.includes('--qos') ? ['--qos', val('--qos', '0')] : [])]
const lgCmd = pinned(pin.loadgen, process.execPath, [join(ROOT, 'bench/loadgen.mjs'), ...lgArgs])
const lg = spawn(lgCmd.cmd, lgCmd.args, { stdio: ['ignore', 'pipe', 'ignore'] })
let result = ''
createInterface({ input: /** @type {import('node:stream').Readable} */ (lg.stdout) }).on('line', (l) => { result = l })
await new Promise((resolve) => lg.once('exit', resolve))
gw.kill('SIGTERM')
await new Promise((resolve) => gw.once('exit', resolve))
process.stdout.write(`${scenario} ${pubDoor} -> ${subDoor}: ${result}\n`)

const file = readdirSync(outDir).find((f) => f.endsWith('.cpuprofile'))
if (!file) { process.stderr.write('no profile written\n'); process.exit(1) }
/** @type {{ nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }>, samples: number[], startTime: number, endTime: number }} */
const prof = JSON.parse(readFileSync(join(outDir, file), 'utf8'))
const total = prof.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0)
/** @type {Map<string, number>} */
const byFn = new Map()
/** @type {Map<string, number>} */
const byModule = new Map()
for (const n of prof.nodes) {
  const hits = n.hitCount ?? 0
  if (!hits) continue
  const { functionName, url: u, lineNumber } = n.callFrame
  const short = u.replace(/^file:\/\//, '').replace(ROOT + '/', '')
  const fn = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`
  byFn.set(fn, (byFn.get(fn) ?? 0) + hits)
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(short)?.[1] ?? (short.startsWith('node:') ? short.split('/')[0] : short.startsWith('dist/') ? short : functionName.startsWith('(') ? functionName : 'other')
  byModule.set(/** @type {string} */ (mod), (byModule.get(/** @type {string} */ (mod)) ?? 0) + hits)
}
const show = (/** @type {string} */ title, /** @type {Map<string, number>} */ m) => {
  process.stdout.write(`\n${title}\n`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}\n`)
}
const idle = byFn.get('(idle) ') ?? 0
const intervalUs = (prof.endTime - prof.startTime) / Math.max(1, prof.samples.length)
process.stdout.write(`\nbusy: ${((total - idle) * intervalUs / 1e6).toFixed(2)} s of ${(total * intervalUs / 1e6).toFixed(2)} s sampled\n`)
show('self time by module', byModule)
show('self time by function', byFn)
process.stdout.write(`\nprofile: ${join(outDir, file)}\n`)
if (argv.includes('--discard')) rmSync(outDir, { recursive: true, force: true })
