import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyPluginAsync } from 'fastify'
import { FusionError } from '../../../core/errors.js'

const here = dirname(fileURLToPath(import.meta.url))
/** What `npm run bench` writes: docs/bench-latest.json, four levels up from both src/doors/http/routes and dist/doors/http/routes. */
export const BENCH_FILE = join(here, '..', '..', '..', '..', 'docs', 'bench-latest.json')
/**
 * The largest results file read, @default 1 MiB. Today's is under 100 KB; the cap keeps a
 * request from making the gateway read and parse an arbitrarily large file.
 */
export const MAX_BENCH_BYTES = 1024 * 1024

/** The doors as the bench names them (`fanout.gateway.<door>`, `latency.gateway.<door>`). */
const DOORS = ['ws', 'mqtt-ws', 'mqtt'] as const

interface Figures { msgPerSec?: number, p50?: number, p99?: number, max?: number }

export interface BenchSummary {
  readonly source: 'docs/bench-latest.json'
  readonly date: string | undefined
  readonly command: string | undefined
  readonly machine: { cpus?: number, cpuModel?: string, node?: string, pinning?: string }
  /** Fan-out: one publisher, `subscribers` Node clients, at most `window` messages in flight. */
  readonly fanout: { subscribers?: number, window?: number, payloadBytes?: number }
  readonly doors: Record<string, { label?: string, fanout?: Figures, latency?: Figures }>
}

function num (v: unknown): number | undefined { return typeof v === 'number' && Number.isFinite(v) ? v : undefined }
function str (v: unknown): string | undefined { return typeof v === 'string' ? v.slice(0, 200) : undefined }
function obj (v: unknown): Record<string, unknown> { return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {} }

function figures (m: unknown): Figures | undefined {
  const median = obj(obj(m).median)
  const f = { msgPerSec: num(median.msgPerSec), p50: num(median.p50), p99: num(median.p99), max: num(median.max) }
  return f.msgPerSec === undefined && f.p99 === undefined ? undefined : f
}

/** The per-door figures the comparison page shows, out of the whole results file. */
export function summarizeBench (raw: unknown): BenchSummary {
  const r = obj(raw)
  const machine = obj(r.machine)
  const options = obj(r.options)
  const m = obj(r.measurements)
  const doors: BenchSummary['doors'] = {}
  for (const door of DOORS) {
    const fan = m[`fanout.gateway.${door}`]
    const lat = m[`latency.gateway.${door}`]
    if (fan === undefined && lat === undefined) continue
    doors[door] = { label: str(obj(fan ?? lat).label), fanout: figures(fan), latency: figures(lat) }
  }
  return {
    source: 'docs/bench-latest.json',
    date: str(r.date),
    command: str(r.command),
    machine: { cpus: num(machine.cpus), cpuModel: str(machine.cpuModel), node: str(machine.node), pinning: str(machine.pinning) },
    fanout: { subscribers: num(options.subscribers), window: num(options.fanoutWindow), payloadBytes: num(options.payloadBytes) },
    doors
  }
}

export interface BenchRoutesDeps {
  /** The results file; BENCH_FILE unless a test names another. */
  readonly file?: string
}

/**
 * `GET /api/bench`: the last `npm run bench` results per door, read-only. The file is
 * read again only when it changed (size or mtime), so a new bench run shows without a
 * restart and repeated requests cost a stat.
 */
export const benchRoutes: FastifyPluginAsync<BenchRoutesDeps> = async (app, deps) => {
  const file = deps.file ?? BENCH_FILE
  let cached: { key: string, summary: BenchSummary } | undefined
  const missing = (): FusionError => new FusionError('NOT_FOUND', 'no bench results on this gateway: run `npm run bench` where it is installed')
  app.get('/api/bench', { schema: { querystring: { type: 'object' } } }, async () => {
    const s = await stat(file).catch(() => undefined)
    if (!s?.isFile()) throw missing()
    if (s.size > MAX_BENCH_BYTES) throw new FusionError('NOT_FOUND', `the bench results file is over ${MAX_BENCH_BYTES} bytes: not read`)
    const key = `${s.size}:${s.mtimeMs}`
    if (cached?.key === key) return cached.summary
    let raw: unknown
    try {
      raw = JSON.parse(await readFile(file, 'utf8'))
    } catch {
      throw missing()
    }
    cached = { key, summary: summarizeBench(raw) }
    return cached.summary
  })
}
