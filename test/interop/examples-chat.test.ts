// examples/ws-chat.mjs and examples/mqtt-chat.mjs, run as a user runs them
// (node examples/x.mjs, stdin and stdout) against the built gateway.
import t from 'tap'
import { join } from 'node:path'
import { openHub, type T } from '../helpers/gateway.js'
import { startCli, PROJECT_DIR } from '../helpers/cli.js'
import { runProgram, type RunningProgram } from '../helpers/program.js'

/** An example started as `node examples/<file> args`, its stdin open. */
function example (t: T, file: string, args: string[]): RunningProgram {
  return runProgram(t, process.execPath, [join(PROJECT_DIR, 'examples', file), ...args], { cwd: PROJECT_DIR, stdin: true })
}

const hasLine = (line: string) => (text: string): boolean => text.split('\n').includes(line)

t.test('ws-chat: stdin lines become chat, what arrives is printed as "from: text"', async (t) => {
  const gw = await startCli(t, ['--memory'])
  const bob = await openHub(t, gw.urls.ws, { name: 'bob' })
  await bob.waitJson('history')
  const alice = example(t, 'ws-chat.mjs', ['--url', gw.urls.ws, '--name', 'alice', '--room', 'lobby'])
  await alice.wait((e) => e.includes('* alice in room lobby'), 'the welcome', 'err')
  await bob.waitJson('presence', (f) => f.name === 'alice' && f.status === 'online')

  bob.send('hi alice')
  await alice.wait(hasLine('bob: hi alice'), "bob's line")

  alice.say('hello bob')
  t.match(await bob.waitMessage('chat/lobby', (f) => f.from === 'alice'), { payload: 'hello bob', via: 'ws' })
  alice.say('{not json, still a chat line}')
  await bob.waitMessage('chat/lobby', (f) => f.payload === '{not json, still a chat line}')
  await alice.wait(hasLine('alice: {not json, still a chat line}'), 'its own line echoed')

  alice.proc.stdin!.end()
  t.match(await alice.exited, { code: 0 }, 'stdin ended: it leaves cleanly')
  await bob.waitJson('presence', (f) => f.name === 'alice' && f.status === 'offline')
})

t.test('ws-chat --format text: plain lines both ways, history of the room first in json', async (t) => {
  const gw = await startCli(t, ['--memory'])
  const bob = await openHub(t, gw.urls.ws, { name: 'bob', room: 'den' })
  await bob.waitJson('history')
  bob.send('before you came')
  await bob.waitMessage('chat/den')

  const carol = example(t, 'ws-chat.mjs', ['--url', gw.urls.ws, '--name', 'carol', '--room', 'den', '--format', 'text'])
  await bob.waitJson('presence', (f) => f.name === 'carol' && f.status === 'online')
  bob.send('welcome carol')
  await carol.wait(hasLine('bob: welcome carol'), "bob's line as text")
  carol.say('thanks')
  t.match(await bob.waitMessage('chat/den', (f) => f.from === 'carol'), { payload: 'thanks' })
  await carol.wait(hasLine('carol: thanks'), 'its own line')
  t.notOk(carol.out().split('\n').some((l) => l.startsWith('{')), 'no JSON on stdout with format=text')
  t.notOk(carol.out().includes('before you came'), 'format=text gets live lines only, no history')

  // The same room in json: the history comes first, printed like live lines.
  const dan = example(t, 'ws-chat.mjs', ['--url', gw.urls.ws, '--name', 'dan', '--room', 'den'])
  await dan.wait(hasLine('bob: before you came'), 'the history')
  dan.proc.kill('SIGTERM')
  t.match(await dan.exited, { code: 0 })
  carol.proc.stdin!.end()
  t.match(await carol.exited, { code: 0 })
})

t.test('mqtt-chat: the same chat over MQTT/TCP, printed the same way as ws-chat prints it', async (t) => {
  const gw = await startCli(t, ['--memory'])
  const bob = await openHub(t, gw.urls.ws, { name: 'bob' })
  await bob.waitJson('history')
  const alice = example(t, 'ws-chat.mjs', ['--url', gw.urls.ws, '--name', 'alice'])
  await alice.wait((e) => e.includes('* alice in room lobby'), 'the welcome', 'err')
  const dave = example(t, 'mqtt-chat.mjs', ['--url', gw.urls.mqtt, '--name', 'dave', '--room', 'lobby'])
  await dave.wait((e) => e.includes('* dave in chat/lobby'), 'subscribed', 'err')
  t.match(await bob.waitJson('presence', (f) => f.name === 'dave' && f.status === 'online'), { via: 'mqtt' }, 'its username is its name')

  bob.send('hi dave')
  await dave.wait(hasLine('bob: hi dave'), "bob's line over MQTT")
  await alice.wait(hasLine('bob: hi dave'), "and over /ws, the same line")

  dave.say('hello from mqtt')
  t.match(await bob.waitMessage('chat/lobby', (f) => f.from === 'dave'), { payload: 'hello from mqtt', via: 'mqtt' }, 'the envelope names dave')
  await alice.wait(hasLine('dave: hello from mqtt'), 'ws-chat prints it')
  await dave.wait(hasLine('dave: hello from mqtt'), 'mqtt-chat prints its own echo the same way')

  alice.say('and back')
  await dave.wait(hasLine('alice: and back'), "alice's line over MQTT")

  dave.proc.stdin!.end()
  t.match(await dave.exited, { code: 0 }, 'stdin ended: DISCONNECT and exit 0')
  await bob.waitJson('presence', (f) => f.name === 'dave' && f.status === 'offline')
})
