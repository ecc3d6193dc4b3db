// A full disk during publishing: every chat frame is answered (ack or STORE_FAILED),
// never silently dropped, and whatever was acked is still there after a restart.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCli } from '../helpers/cli.js'
import { openHub, type HubFrame } from '../helpers/gateway.js'

t.test('a store that runs out of space answers every frame and keeps what it acked', async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'fusion-fulldisk-'))
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]).status === 0
  if (!mounted) {
    rmSync(mnt, { recursive: true, force: true })
    t.comment('SKIP: cannot mount a small tmpfs here (needs root in a namespace that allows mounts)')
    return
  }
  t.teardown(() => { spawnSync('umount', ['-l', mnt]); rmSync(mnt, { recursive: true, force: true }) })
  const dataDir = join(mnt, 'data')
  mkdirSync(dataDir)
  const gw = await startCli(t, ['--data-dir', dataDir, '--history-max-per-topic', '1000000'])
  const room = 'full'
  const c = await openHub(t, gw.urls.ws, { name: 'filler', room })
  await c.waitJson('history')
  const text = 'x'.repeat(8000)
  const acked: string[] = []
  let failures = 0
  for (let i = 0; i < 2000 && failures < 5; i++) {
    const answer = await c.request({ type: 'chat', text: `${i} ${text}` })
    if (answer.type === 'ack') acked.push(`${i}`)
    else {
      t.equal(answer.code, 'STORE_FAILED', `frame ${i} refused with STORE_FAILED`)
      failures++
    }
  }
  t.ok(failures > 0, `the disk filled up after ${acked.length} messages and the publisher was told`)
  await gw.stop('SIGKILL')
  // Move the store to a roomy disk and read it back.
  const roomy = mkdtempSync(join(tmpdir(), 'fusion-roomy-'))
  t.teardown(() => rmSync(roomy, { recursive: true, force: true }))
  cpSync(dataDir, roomy, { recursive: true })
  const gw2 = await startCli(t, ['--history-limit', '10000'], { keepDataDir: roomy })
  // /api/history answers in pages of about 1 MiB: read them all, oldest first.
  const kept = new Set<string>()
  let since = 0
  for (let page = 0; page < 100; page++) {
    const r = await fetch(`${gw2.urls.http}/api/history?topic=chat/${room}&limit=10000&since=${since}`)
    const body = await r.json() as { messages: HubFrame[], more?: boolean }
    for (const m of body.messages) kept.add(String(m.payload).split(" ")[0] ?? "")
    if (!body.more || body.messages.length === 0) break
    since = body.messages.at(-1)?.seq as number
  }
  const lost = acked.filter((n) => !kept.has(n))
  t.same(lost, [], `all ${acked.length} acked messages are still in the history`)
})
