// Event-loop lag under each parser's worst input at the default limits (issue 13).
// Usage: npm run build && node bench/parser-lag.mjs [--old DIST_DIR]
// With --old, the same inputs go through another build too (e.g. a checkout of an older
// commit, built): its quadratic cases are timed at 16 and 32 KiB and extrapolated as n²,
// since at the limit they would hold the loop for many minutes.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { dirname, join, resolve } from 'node:path'

const here = dirname(fileURLToPath(import.meta.url))
const NEW = join(here, '..', 'dist')
const oldAt = process.argv.indexOf('--old')
const OLD = oldAt > 0 ? resolve(process.argv[oldAt + 1]) : undefined

const load = async (dir) => ({
  frames: await import(join(dir, 'doors/ws-hub/frames.js')),
  envelope: await import(join(dir, 'core/topics/envelope.js')),
  guard: await import(join(dir, 'core/json-guard.js')).catch(() => undefined)
})
const now = await load(NEW)
const old = OLD ? await load(OLD) : undefined

const MAX_FRAME = 256 * 1024 * 2 + 4096
const MAX_PAYLOAD = 256 * 1024
const RES = 5

/** Feeds `input` to `fn` `times` times, 30 ms apart, and reads the loop's delay meanwhile. */
async function lagOf (fn, input, times = 5) {
  const h = monitorEventLoopDelay({ resolution: RES })
  h.enable()
  for (let i = 0; i < times; i++) {
    await new Promise((resolve) => setTimeout(resolve, 30))
    try { fn(input) } catch {}
  }
  await new Promise((resolve) => setTimeout(resolve, 30))
  h.disable()
  const beyond = (ns) => Math.max(0, ns / 1e6 - RES)
  return { max: beyond(h.max), p99: beyond(h.percentile(99)) }
}
const fmt = (r) => `max ${r.max.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`
const once = (fn, input) => { const t0 = performance.now(); try { fn(input) } catch {} return performance.now() - t0 }

const envelope = (m) => (b) => m.envelope.decodeChatPayload(b, { from: 'x', ts: 1, via: 'mqtt' })
const httpBody = (m) => (s) => { if (!m.guard || !m.guard.jsonTooDeep(s)) JSON.parse(s) }
const cases = [
  ['/ws frame: newlines, then one other character', MAX_FRAME, (n) => '\n'.repeat(n - 1) + 'x', (m) => m.frames.parseClientFrame, true],
  ['/ws frame: CR LF pairs, then one other character', MAX_FRAME, (n) => '\r\n'.repeat(n / 2 - 1) + 'x', (m) => m.frames.parseClientFrame, true],
  ['/ws frame: `{"a":` then `[` to the end', MAX_FRAME, (n) => '{"a":' + '['.repeat(n - 5), (m) => m.frames.parseClientFrame],
  ['/ws frame: balanced nested arrays', MAX_FRAME, (n) => '{"a":' + '['.repeat(n / 2 - 4) + ']'.repeat(n / 2 - 4) + '}', (m) => m.frames.parseClientFrame],
  ['chat payload (MQTT, any door): deep JSON', MAX_PAYLOAD, (n) => Buffer.from('{"text":' + '['.repeat(n - 8)), envelope],
  ['HTTP JSON body: deep JSON', MAX_FRAME, (n) => '{"topic":' + '['.repeat(n - 9), httpBody]
]

console.log(`| worst input | size | ${old ? 'before | ' : ''}after |`)
console.log(`| --- | --- | ${old ? '--- | ' : ''}--- |`)
for (const [what, max, make, pick, quadratic] of cases) {
  const after = fmt(await lagOf(pick(now), make(max)))
  let before = ''
  if (old) {
    if (quadratic) {
      const a = once(pick(old), make(16384))
      const b = once(pick(old), make(32768))
      before = `16 KiB ${a.toFixed(0)} ms, 32 KiB ${b.toFixed(0)} ms: ~${(b * (max / 32768) ** 2 / 1000 / 60).toFixed(0)} min at the limit | `
    } else {
      before = `${fmt(await lagOf(pick(old), make(max)))} | `
    }
  }
  console.log(`| ${what} | ${max} | ${before}${after} |`)
}
