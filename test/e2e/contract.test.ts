// The outside contract check (../shared/contract, or $FUSION_CONTRACT_DIR), run against
// the built command as its authors run it. It is copied inside the project so that its
// imports (mqtt, mqtt-packet, ws) resolve from our node_modules.
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { BIN, PROJECT_DIR } from '../helpers/cli.js'
import { requireProgram } from '../helpers/gateway.js'

const CONTRACT_DIR = resolve(process.env.FUSION_CONTRACT_DIR ?? join(PROJECT_DIR, '..', 'shared', 'contract'))
const SUITE = 'core-doors.mjs'
const present = existsSync(join(CONTRACT_DIR, SUITE))
const RUN_DIR = join(PROJECT_DIR, 'test-output', 'contract-run')

function run (file: string, timeoutMs: number): Promise<{ code: number | null, out: string, timedOut: boolean }> {
  return new Promise((resolve) => {
    const env: Record<string, string> = {}
    // The suite starts from its own options, not from whatever FUSION_* the shell has;
    // tap's NODE_OPTIONS hook is not the suite's business either.
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FUSION_') && k !== 'NODE_OPTIONS') env[k] = v
    env.PROJECT_DIR = PROJECT_DIR
    const proc = spawn(process.execPath, [file], { cwd: RUN_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let timedOut = false
    proc.stdout.on('data', (d) => { out += d })
    proc.stderr.on('data', (d) => { out += d })
    const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL') }, timeoutMs)
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, out, timedOut }) })
  })
}

t.test(`the outside contract suite ${SUITE} passes`, { skip: present ? false : `no contract suite at ${CONTRACT_DIR} (set FUSION_CONTRACT_DIR)` }, async (t) => {
  if (!requireProgram(t, 'mosquitto_pub', 'mosquitto-clients') || !requireProgram(t, 'mosquitto_sub', 'mosquitto-clients')) return
  if (!existsSync(BIN)) {
    t.fail(`${BIN} is missing: npm test builds first (npm run build)`)
    return
  }
  rmSync(RUN_DIR, { recursive: true, force: true })
  mkdirSync(RUN_DIR, { recursive: true })
  for (const name of readdirSync(CONTRACT_DIR)) {
    if (name.endsWith('.mjs')) cpSync(join(CONTRACT_DIR, name), join(RUN_DIR, name))
  }
  cpSync(join(CONTRACT_DIR, 'lib'), join(RUN_DIR, 'lib'), { recursive: true })

  const r = await run(SUITE, 90_000)
  const lines = r.out.split('\n').map((l) => l.trimEnd()).filter(Boolean)
  const last = lines[lines.length - 1] ?? ''
  for (const l of lines.filter((x) => x.startsWith('not ok'))) t.comment(l)
  t.notOk(r.timedOut, 'the suite finished within 90 s')
  const m = /^(\d+) passed, (\d+) failed$/.exec(last)
  t.ok(m, `the last line is "N passed, N failed" (got ${JSON.stringify(last.slice(0, 200))})`)
  if (m) {
    t.ok(Number(m[1]) > 0, `${m[1]} checks passed`)
    t.equal(Number(m[2]), 0, `no check failed${Number(m[2]) ? `: ${lines.filter((x) => x.startsWith('not ok')).join(' / ').slice(0, 600)}` : ''}`)
  }
  t.equal(r.code, 0, 'the suite exits 0')
})
