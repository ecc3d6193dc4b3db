// GET /api/bench: the last bench results per door, read-only, bounded, and a clear 404.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { BENCH_FILE, MAX_BENCH_BYTES, benchRoutes, summarizeBench } from '../../../../../src/doors/http/routes/bench.js'

async function appFor (t: { teardown (fn: () => unknown): void }, file: string): Promise<ReturnType<typeof Fastify>> {
  const app = Fastify()
  await app.register(benchRoutes, { file })
  t.teardown(() => app.close())
  return app
}

t.test('the committed results: throughput and p99 per door from Node clients', async (t) => {
  const res = await (await appFor(t, BENCH_FILE)).inject({ method: 'GET', url: '/api/bench' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.source, 'docs/bench-latest.json')
  const raw = JSON.parse(readFileSync(BENCH_FILE, 'utf8'))
  t.equal(body.date, raw.date)
  for (const door of ['ws', 'mqtt-ws', 'mqtt']) {
    t.equal(body.doors[door].fanout.msgPerSec, raw.measurements[`fanout.gateway.${door}`].median.msgPerSec, `${door}: fan-out msg/s`)
    t.equal(body.doors[door].fanout.p99, raw.measurements[`fanout.gateway.${door}`].median.p99, `${door}: fan-out p99`)
    t.equal(body.doors[door].latency.p99, raw.measurements[`latency.gateway.${door}`].median.p99, `${door}: p99 under steady load`)
  }
  t.equal(body.fanout.subscribers, raw.options.subscribers)
  t.ok(res.body.length < 4096, `a summary, not the whole file (${res.body.length} B)`)
})

t.test('missing, oversized or broken results: 404 NOT_FOUND, and a rewrite is picked up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fusion-bench-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'bench-latest.json')
  const app = await appFor(t, file)
  const none = await app.inject({ method: 'GET', url: '/api/bench' })
  t.equal(none.statusCode, 404)
  t.equal(none.json().code, 'NOT_FOUND')
  writeFileSync(file, '{"date": "2026-01-01", "measurements": {')
  t.equal((await app.inject({ method: 'GET', url: '/api/bench' })).json().code, 'NOT_FOUND', 'not JSON')
  writeFileSync(file, ' '.repeat(MAX_BENCH_BYTES + 1))
  const big = await app.inject({ method: 'GET', url: '/api/bench' })
  t.equal(big.statusCode, 404)
  t.match(big.json().message, /over 1048576 bytes/)
  writeFileSync(file, JSON.stringify({ date: 'd1', measurements: { 'fanout.gateway.ws': { label: 'x', median: { msgPerSec: 5, p99: 2 } } } }))
  t.equal((await app.inject({ method: 'GET', url: '/api/bench' })).json().doors.ws.fanout.msgPerSec, 5)
  writeFileSync(file, JSON.stringify({ date: 'd2 longer', measurements: { 'fanout.gateway.ws': { label: 'x', median: { msgPerSec: 7, p99: 2 } } } }))
  t.equal((await app.inject({ method: 'GET', url: '/api/bench' })).json().doors.ws.fanout.msgPerSec, 7, 'a new run shows without a restart')
})

t.test('the summary keeps only numbers and short strings it knows', async (t) => {
  const s = summarizeBench({ date: 'x'.repeat(1000), machine: { cpus: '2' }, measurements: { 'fanout.gateway.ws': { median: { msgPerSec: 'lots', p99: 3 } }, 'other.thing': {} } })
  t.equal(s.date?.length, 200)
  t.equal(s.machine.cpus, undefined)
  t.same(Object.keys(s.doors), ['ws'])
  t.same(s.doors.ws!.fanout, { msgPerSec: undefined, p50: undefined, p99: 3, max: undefined })
  t.same(summarizeBench(null).doors, {})
})
