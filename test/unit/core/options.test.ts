// Options: defaults, checks (every problem in one error), a frozen result, and where
// the command line finds them (flag over environment over config file).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FusionError } from '../../../src/core/errors.js'
import { DEFAULTS, OPTION_FLAGS, resolveOptions, type GatewayOptions } from '../../../src/core/options.js'
import { envName, parseCli } from '../../../src/cli/args.js'

function badOption (fn: () => unknown): FusionError {
  try {
    fn()
  } catch (err) {
    if (err instanceof FusionError && err.code === 'BAD_OPTION') return err
    throw err
  }
  throw new Error('expected a BAD_OPTION error')
}

const dir = mkdtempSync(join(tmpdir(), 'fusion-options-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
function configFile (content: unknown): string {
  const file = join(dir, `config-${++files}.json`)
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
  return file
}

t.test('defaults are those of PROTOCOL.md, every limit finite', async (t) => {
  const o = resolveOptions()
  t.equal(o.host, '0.0.0.0')
  t.equal(o.httpPort, 3000)
  t.equal(o.mqttPort, 1883)
  t.equal(o.dataDir, './data')
  t.equal(o.memory, false)
  t.equal(o.redis, undefined)
  t.equal(o.historyLimit, 50)
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number') t.ok(Number.isFinite(v), `${k} is finite`)
  }
  t.ok(Object.isFrozen(DEFAULTS), 'DEFAULTS cannot be changed')
})

t.test('the result is frozen and a copy', async (t) => {
  const input = { httpPort: 0 }
  const o = resolveOptions(input)
  t.ok(Object.isFrozen(o))
  t.throws(() => { (o as { httpPort: number }).httpPort = 1 }, TypeError, 'writing to it throws (strict mode)')
  t.equal(o.httpPort, 0)
  t.not(o, DEFAULTS as unknown, 'not the defaults object itself')
  input.httpPort = 5
  t.equal(o.httpPort, 0, 'changing the input afterwards changes nothing')
  t.same(input, { httpPort: 5 }, 'the input is not modified')
})

t.test('numbers: whole, in range; strings from the command line are read as numbers', async (t) => {
  t.equal(resolveOptions({ httpPort: '8080' }).httpPort, 8080)
  t.equal(resolveOptions({ httpPort: 0 }).httpPort, 0, 'port 0 picks a free port')
  t.equal(resolveOptions({ mqttPort: '65535' }).mqttPort, 65535)
  for (const bad of ['abc', '70000', '-1', '1.5', 1.5, '', '0x50', '1e3', NaN, Infinity, true, null, [80]]) {
    const err = badOption(() => resolveOptions({ httpPort: bad }))
    t.match(err.message, /--http-port/, `httpPort ${JSON.stringify(bad)} is refused, naming the option`)
  }
  t.equal(badOption(() => resolveOptions({ maxPayload: 0 })).code, 'BAD_OPTION', 'a zero payload limit is refused')
})

t.test('booleans and strings', async (t) => {
  for (const [raw, want] of [[true, true], [false, false], ['1', true], ['true', true], ['', true], ['0', false], ['false', false]] as const) {
    t.equal(resolveOptions({ memory: raw }).memory, want, `memory ${JSON.stringify(raw)}`)
  }
  t.match(badOption(() => resolveOptions({ memory: 'yes' })).message, /--memory/)
  t.match(badOption(() => resolveOptions({ host: '' })).message, /--host/)
  t.match(badOption(() => resolveOptions({ dataDir: 42 })).message, /--data-dir/)
  t.equal(resolveOptions({ redis: 'redis://127.0.0.1:6379' }).redis, 'redis://127.0.0.1:6379')
  t.equal(resolveOptions({ redis: 'rediss://h:1' }).redis, 'rediss://h:1')
  t.match(badOption(() => resolveOptions({ redis: 'http://x' })).message, /--redis/)
})

t.test('every problem is reported in one error', async (t) => {
  const err = badOption(() => resolveOptions({ httpPort: 'abc', mqttPort: 70000, memory: 'maybe', bogus: 1, host: '' } as never))
  t.match(err.message, /--http-port/)
  t.match(err.message, /--mqtt-port/)
  t.match(err.message, /--memory/)
  t.match(err.message, /unknown option "bogus"/)
  t.match(err.message, /--host/)
  t.equal(err.status, 400)
})

t.test('the MQTT packet limit follows a bigger payload limit unless given', async (t) => {
  t.equal(resolveOptions().maxPacket, DEFAULTS.maxPacket, 'the default')
  const big = resolveOptions({ maxPayload: 1024 * 1024 })
  t.ok(big.maxPacket >= 1024 * 1024 + big.maxTopicLength, `a 1 MiB payload with the longest topic fits (${big.maxPacket})`)
  t.equal(resolveOptions({ maxPayload: 1024 * 1024, maxPacket: 5000 }).maxPacket, 5000, 'an explicit --max-packet wins')
  t.equal(resolveOptions({ maxPayload: 1024 }).maxPacket, DEFAULTS.maxPacket, 'a smaller payload limit keeps the default packet limit')
})

t.test('undefined means "not given"', async (t) => {
  t.equal(resolveOptions({ httpPort: undefined }).httpPort, 3000)
})

t.test('command line: flags', async (t) => {
  const r = parseCli(['--host', '127.0.0.1', '--http-port', '0', '--mqtt-port=0', '--memory', '--data-dir', '/tmp/x'], {})
  t.same(r.options, { host: '127.0.0.1', httpPort: '0', mqttPort: '0', memory: true, dataDir: '/tmp/x' })
  t.equal(r.help, false)
  t.equal(parseCli(['--help'], {}).help, true)
  t.equal(parseCli(['-h'], {}).help, true)
  t.equal(parseCli(['--version'], {}).version, true)
  t.equal(parseCli(['-v'], {}).version, true)
  const o = resolveOptions(parseCli(['--http-port', '8081', '--history-limit', '7'], {}).options)
  t.equal(o.httpPort, 8081)
  t.equal(o.historyLimit, 7)
})

t.test('command line: unknown flags, stray arguments and missing values are BAD_OPTION naming them', async (t) => {
  t.match(badOption(() => parseCli(['--frobnicate'], {})).message, /--frobnicate/)
  t.match(badOption(() => parseCli(['stray'], {})).message, /stray/)
  t.match(badOption(() => parseCli(['--http-port'], {})).message, /--http-port/)
  for (const args of [['--frobnicate'], ['stray'], ['--http-port']]) {
    const msg = badOption(() => parseCli(args, {})).message
    t.notMatch(msg, /\n/, `${args.join(' ')}: one line`)
  }
})

t.test('environment variables: the names of PROTOCOL.md', async (t) => {
  const env = {
    FUSION_HOST: '127.0.0.1',
    FUSION_HTTP_PORT: '4000',
    FUSION_MQTT_PORT: '4001',
    FUSION_DATA_DIR: '/tmp/data',
    FUSION_MEMORY: '1',
    FUSION_REDIS_URL: 'redis://127.0.0.1:6379'
  }
  const o = resolveOptions(parseCli([], env).options)
  t.equal(o.host, '127.0.0.1')
  t.equal(o.httpPort, 4000)
  t.equal(o.mqttPort, 4001)
  t.equal(o.dataDir, '/tmp/data')
  t.equal(o.memory, true)
  t.equal(o.redis, 'redis://127.0.0.1:6379')
  t.equal(resolveOptions(parseCli([], { FUSION_MEMORY: '0' }).options).memory, false)
  t.same(parseCli([], { FUSION_HTTP_PORT: '' }).options, {}, 'an empty variable is not set')
  t.same(parseCli([], { HTTP_PORT: '1', PATH: '/bin' }).options, {}, 'other variables are ignored')
})

t.test('environment variables: every option has one', async (t) => {
  const env: Record<string, string> = {}
  for (const key of Object.keys(OPTION_FLAGS) as Array<keyof GatewayOptions>) env[envName(key)] = 'x'
  const seen = parseCli([], env).options
  t.same(Object.keys(seen).sort(), Object.keys(OPTION_FLAGS).sort(), 'each option is read from its variable')
  t.equal(envName('maxPayload'), 'FUSION_MAX_PAYLOAD')
  t.equal(resolveOptions(parseCli([], { FUSION_MAX_PAYLOAD: '1000' }).options).maxPayload, 1000)
  t.equal(resolveOptions(parseCli([], { FUSION_HISTORY_LIMIT: '9' }).options).historyLimit, 9)
})

t.test('precedence: flag over environment over config file', async (t) => {
  const file = configFile({ 'http-port': 1111, mqttPort: 1112, host: '127.0.0.2' })
  const env = { FUSION_CONFIG: file, FUSION_HTTP_PORT: '2222' }
  const all = resolveOptions(parseCli(['--http-port', '3333'], env).options)
  t.equal(all.httpPort, 3333, 'the flag wins')
  t.equal(all.mqttPort, 1112, 'the config file fills what nothing else sets')
  t.equal(all.host, '127.0.0.2')
  t.equal(resolveOptions(parseCli([], env).options).httpPort, 2222, 'the environment beats the config file')
  t.equal(resolveOptions(parseCli([], { FUSION_CONFIG: file }).options).httpPort, 1111, 'the config file alone')
  const other = configFile({ httpPort: 5555 })
  t.equal(resolveOptions(parseCli(['--config', other], env).options).httpPort, 2222, '--config beats FUSION_CONFIG; the env still beats the file')
  t.equal(resolveOptions(parseCli(['--config', other], {}).options).httpPort, 5555, 'camelCase keys work in the file')
  t.equal(resolveOptions(parseCli(['--memory'], { FUSION_MEMORY: '0' }).options).memory, true, '--memory beats FUSION_MEMORY=0')
})

t.test('a config file that cannot be used is BAD_OPTION naming --config', async (t) => {
  const cases: Array<[string, RegExp]> = [
    [join(dir, 'missing.json'), /ENOENT/],
    [configFile('{not json'), /JSON/],
    [configFile('[1,2]'), /object/],
    [configFile('null'), /object/],
    [configFile({ 'http-port': 1, nonsense: true }), /unknown key "nonsense"/]
  ]
  for (const [file, why] of cases) {
    const err = badOption(() => parseCli(['--config', file], {}))
    t.match(err.message, /--config/, `${file}: names --config`)
    t.match(err.message, why, `${file}: says why (${err.message})`)
    t.match(err.message, file, 'and names the file')
  }
  const err = badOption(() => resolveOptions(parseCli(['--config', configFile({ 'http-port': 'abc' })], {}).options))
  t.match(err.message, /--http-port/, 'a bad value in the file names the option')
})
