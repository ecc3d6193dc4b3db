// The comparison page's pure parts, in Node: the run engine (bounds, pacing under the
// gateway's rate, fixed rate, stop, losses) and the gateway-share figures it shows.
import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { PROJECT_DIR } from '../helpers/cli.js'

// Plain browser modules, no types: loaded by URL so the type checker does not follow them.
const load = async (file: string): Promise<any> => await import(pathToFileURL(join(PROJECT_DIR, 'public', 'js', file)).href)
const run = await load('run.js')
const figures = await load('figures.js')

interface Echo { rtt: number, up: number, down: number, text: string }
type Done = (err: Error | null, echo?: Echo) => void

/** A door that echoes after `delayMs` (0: next macrotask), or fails what `fail` says. */
function fakeDoor (opts: { delayMs?: number, fail?: (text: string) => 'refuse' | 'lose' | undefined } = {}) {
  const sent: Array<{ text: string, at: number }> = []
  let waiting = 0
  let maxWaiting = 0
  return {
    door: 'ws',
    sent,
    get maxWaiting () { return maxWaiting },
    send (text: string, done: Done): boolean {
      const verdict = opts.fail?.(text)
      if (verdict === 'refuse') return false
      const at = performance.now()
      sent.push({ text, at })
      waiting++
      maxWaiting = Math.max(maxWaiting, waiting)
      setTimeout(() => {
        waiting--
        if (verdict === 'lose') done(new Error('no echo'))
        else done(null, { rtt: performance.now() - at, up: 50, down: 190, text })
      }, opts.delayMs ?? 0)
      return true
    }
  }
}

t.test('a burst sends every message once, never more than the window waiting', async (t) => {
  const door = fakeDoor({ delayMs: 1 })
  const progress: number[] = []
  const r = run.startRun(door, { mode: 'burst', n: 120, window: 7 }, { pacer: new run.Pacer(0, 0), tag: 'abc', onProgress: (n: number) => progress.push(n) })
  const rec = await r.done
  t.equal(rec.sent, 120)
  t.equal(rec.rtt.length, 120)
  t.equal(rec.lost, 0)
  t.equal(door.maxWaiting, 7, 'the window holds')
  t.equal(new Set(door.sent.map((s) => s.text)).size, 120, 'every text is unique')
  t.match(door.sent[0]!.text, /^burst 1\/120 abc-w$/)
  t.same(progress, Array.from({ length: 120 }, (_, i) => i + 1))
  t.ok(rec.at.every((a: number, i: number) => i === 0 || a >= 0), 'send times from the start')
})

t.test('bounds: at most 10,000 messages and 100 in flight, whatever is asked', async (t) => {
  t.equal(run.MAX_MESSAGES, 10_000)
  // Echoes late enough that none comes back before the stop.
  const door = fakeDoor({ delayMs: 200 })
  const r = run.startRun(door, { mode: 'burst', n: 1e9, window: 1e6 }, { pacer: new run.Pacer(0, 0), tag: 'x' })
  t.equal(r.record.planned, 10_000)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(door.maxWaiting, run.MAX_WINDOW)
  r.stop()
  const rec = await r.done
  t.ok(rec.stopped)
  t.equal(rec.sent, 100, 'a stop sends nothing more')
  t.equal(rec.rtt.length, 100, 'and waits for what is on its way')
  const rate = run.startRun(fakeDoor(), { mode: 'rate', rate: 1e9, seconds: 1e9 }, { pacer: new run.Pacer(0, 0), tag: 'x' })
  t.equal(rate.record.planned, 10_000, 'a fixed rate too')
  rate.stop()
  await rate.done
})

t.test('the pacer keeps under the gateway\'s allowance: burst first, then the rate', async (t) => {
  const p = new run.Pacer(100, 200) // the gateway: 100/s, bursts of 200; the page keeps 90%
  let taken = 0
  const t0 = p.last
  while (p.take(t0)) taken++
  t.equal(taken, 180, '90% of the burst at once')
  t.equal(p.waitMs(t0), 12, 'then one token every 1000/90 ms')
  t.notOk(p.take(t0 + 5))
  t.ok(p.take(t0 + 12))
  const unlimited = new run.Pacer(0, 0)
  for (let i = 0; i < 100_000; i++) if (!unlimited.take()) t.fail('no limit means no wait')
  t.equal(unlimited.waitMs(), 0)
  p.retune(10, 20)
  t.ok(p.burst === 18 && p.tokens <= 18, 'lower limits learnt later apply to what is left')
})

t.test('a paced burst waits for tokens instead of overrunning the gateway', async (t) => {
  const door = fakeDoor()
  const pacer = new run.Pacer(1000, 20) // 18 at once, then 900/s
  const t0 = performance.now()
  const rec = await run.startRun(door, { mode: 'burst', n: 45, window: 100 }, { pacer, tag: 'p' }).done
  const ms = performance.now() - t0
  t.equal(rec.rtt.length, 45)
  t.ok(ms >= 25, `27 messages past the burst at 900/s take about 30 ms (${ms.toFixed(1)} ms)`)
  t.ok(rec.pacedMs > 0, `the wait is recorded (${rec.pacedMs.toFixed(1)} ms)`)
  // No 1 s window ever holds more than the gateway allows: 18 + 0.9/ms.
  for (let i = 0; i < door.sent.length; i++) {
    const inWindow = door.sent.filter((s) => s.at >= door.sent[i]!.at && s.at < door.sent[i]!.at + 10).length
    if (inWindow > 18 + 9 + 1) t.fail(`${inWindow} sends within 10 ms`)
  }
})

t.test('a fixed rate sends on schedule, counts what it sent late and what was lost', async (t) => {
  let i = 0
  const door = fakeDoor({ fail: () => (++i % 10 === 0 ? 'lose' : i === 3 ? 'refuse' : undefined) })
  const t0 = performance.now()
  const rec = await run.startRun(door, { mode: 'rate', rate: 200, seconds: 0.25 }, { pacer: new run.Pacer(0, 0), tag: 'r' }).done
  const ms = performance.now() - t0
  t.equal(rec.planned, 50)
  t.equal(rec.sent, 50)
  t.equal(rec.lost, 1 + 5, 'one refused at send, five never echoed')
  t.equal(rec.rtt.length, 44)
  t.ok(ms >= 240, `50 messages at 200/s take about 250 ms (${ms.toFixed(0)} ms)`)
  t.ok(rec.lateMs >= 0 && Number.isFinite(rec.lateMs), `lateness against the schedule is recorded (${rec.lateMs.toFixed(1)} ms)`)
  t.match(door.sent[0]!.text, /^rate 1\/50 r-w$/)
})

t.test('a door that cannot send: the burst ends with everything lost, no recursion', async (t) => {
  const door = fakeDoor({ fail: () => 'refuse' })
  const rec = await run.startRun(door, { mode: 'burst', n: 10_000, window: 100 }, { pacer: new run.Pacer(0, 0), tag: 'z' }).done
  t.equal(rec.lost, 10_000)
  t.equal(rec.rtt.length, 0)
})

t.test('the gateway share: what the histogram gained over a run, and its median', async (t) => {
  const bounds = [0.1, 0.2, 0.5, 1]
  const before = { count: 10, sumMs: 2, counts: [5, 8, 10, 10, 10] }
  const after = { count: 30, sumMs: 9, counts: [5, 18, 28, 30, 30] }
  const d = figures.histogramDelta(before, after)
  t.same(d, { count: 20, sumMs: 7, bins: [0, 10, 8, 2, 0] })
  t.equal(figures.histogramPercentile(bounds, d.bins, 50), 0.2, 'rank 10 closes the 0.1-0.2 bucket')
  t.ok(Math.abs(figures.histogramPercentile(bounds, d.bins, 25) - 0.15) < 1e-9, 'interpolated inside a bucket')
  t.equal(figures.histogramPercentile(bounds, [0, 0, 0, 0, 4], 50), 1, 'past the last bound: that bound')
  t.ok(Number.isNaN(figures.histogramPercentile(bounds, [0, 0, 0, 0, 0], 50)))
  t.equal(figures.histogramDelta(after, before), undefined, 'a restarted gateway (counts went down)')
  t.equal(figures.histogramDelta(undefined, after), undefined)
  t.equal(figures.histogramDelta({ ...before, counts: [1] }, after), undefined)
})
