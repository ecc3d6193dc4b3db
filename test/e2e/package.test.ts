// The npm package as a user gets it: a copy of the checkout (what a clean clone holds),
// `npm pack` there (prepack builds it), the tarball installed into an empty folder from
// the registry, and `npx mqtt-fusion` run to its ready line, serving the pages from the
// package. Slow by nature (a build and an install, ~40-80 s here): one test does it all.
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { PROJECT_DIR, parseReadyLine } from '../helpers/cli.js'

t.setTimeout(300_000)

// npm without its network extras: no update check, audit or funding calls.
const NPM_ENV = { ...process.env, npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' }

function run (cmd: string, args: string[], cwd: string, what: string): string {
  const started = Date.now()
  const r = spawnSync(cmd, args, { cwd, env: NPM_ENV, encoding: 'utf8', timeout: 180_000, maxBuffer: 16 * 1024 * 1024 })
  if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal ?? r.error?.message}): ${r.stderr.slice(-2000)}`)
  t.comment(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return r.stdout
}

t.test('npm pack, install the tarball in an empty folder, npx mqtt-fusion serves from the package', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'fusion-pack-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const clone = join(root, 'clone')
  const out = join(root, 'out')
  const app = join(root, 'app')
  for (const d of [clone, out, app]) mkdirSync(d)

  // A clean clone: the files git tracks (and new ones not ignored), no dist/. The
  // dependencies are the project's own (a clone runs `npm ci`; here a link saves it).
  const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], PROJECT_DIR, 'git ls-files').split('\0').filter(Boolean)
  for (const f of files) {
    if (!existsSync(join(PROJECT_DIR, f))) continue
    mkdirSync(dirname(join(clone, f)), { recursive: true })
    copyFileSync(join(PROJECT_DIR, f), join(clone, f))
  }
  t.notOk(existsSync(join(clone, 'dist')), 'the clone has no build')
  symlinkSync(join(PROJECT_DIR, 'node_modules'), join(clone, 'node_modules'), 'dir')

  run('npm', ['pack', '--pack-destination', out], clone, 'npm pack (prepack builds)')
  const tarballs = readdirSync(out).filter((f) => f.endsWith('.tgz'))
  t.equal(tarballs.length, 1, `one tarball: ${tarballs.join(', ')}`)
  const tarball = join(out, tarballs[0] as string)
  const listing = run('tar', ['-tzf', tarball], root, 'tar -t').split('\n')
  for (const f of ['package/package.json', 'package/dist/cli/main.js', 'package/dist/index.js', 'package/dist/index.d.ts', 'package/public/index.html', 'package/public/compare.html', 'package/README.md']) {
    t.ok(listing.includes(f), `the package holds ${f}`)
  }
  t.notOk(listing.some((f) => f.startsWith('package/test/') || f.startsWith('package/bench/') || f.startsWith('package/node_modules/')), 'no tests, benchmarks or node_modules')

  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'fusion-pack-test', private: true }) + '\n')
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], app, 'npm install <tarball>')
  t.ok(existsSync(join(app, 'node_modules', 'mqtt-fusion', 'dist', 'cli', 'main.js')), 'installed')

  // npx runs the package's bin; in its own process group, so the gateway under npm
  // gets the signal too.
  const proc: ChildProcess = spawn('npx', ['--no-install', 'mqtt-fusion', '--memory', '--host', '127.0.0.1', '--http-port', '0', '--mqtt-port', '0'],
    { cwd: app, env: NPM_ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) { try { process.kill(-(proc.pid as number), 'SIGKILL') } catch {} } })
  let stdout = ''
  let stderr = ''
  proc.stderr!.on('data', (d) => { stderr += d })
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within 30 s; stderr: ${stderr}`)), 30_000)
    proc.stdout!.on('data', (d) => {
      stdout += d
      const line = stdout.split('\n').find((l) => l.startsWith('mqtt-fusion ready '))
      if (line) { clearTimeout(timer); resolve(line) }
    })
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`npx mqtt-fusion exited ${code} before the ready line; stderr: ${stderr}`)) })
  })
  const urls = parseReadyLine(ready)
  t.match(urls.http, /^http:\/\/127\.0\.0\.1:\d+$/, `ready: ${ready}`)

  const page = await fetch(`${urls.http}/`)
  t.equal(page.status, 200, 'the chat page')
  t.equal(await page.text(), readFileSync(join(app, 'node_modules', 'mqtt-fusion', 'public', 'index.html'), 'utf8'), 'served from the installed package')
  t.equal((await fetch(`${urls.http}/compare.html`)).status, 200, 'the compare page')
  const mqttJs = await fetch(`${urls.http}/vendor/mqtt/mqtt.esm.js`)
  t.equal(mqttJs.status, 200, 'MQTT.js from the package\'s own dependency')
  await mqttJs.arrayBuffer()
  t.match(await (await fetch(`${urls.http}/api/health`)).json(), { status: 'ok', store: 'memory' })
  t.equal((await fetch(`${urls.http}/examples/p5/`)).status, 404, 'the p5 example is not in the package (a checkout has it)')

  // SIGTERM to the group: npm does not pass it on (npm 11), the gateway closes by itself.
  process.kill(-(proc.pid as number), 'SIGTERM')
  await exited
  let closed = false
  for (let i = 0; i < 100 && !closed; i++) {
    closed = await fetch(`${urls.http}/api/health`).then(() => false, () => true)
    if (!closed) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(closed, 'SIGTERM: the gateway closed its port')
})
