import t from 'tap'
import { parseUpstreamConfig, MAX_FILE_BYTES, MAX_RULES } from '../../../../src/engine/upstream/config.js'
import { RuleSet, toLocal, toRemote } from '../../../../src/engine/upstream/rules.js'

const pem = (): Buffer => Buffer.from('PEM')
const parse = (text: string) => parseUpstreamConfig(text, '/etc/b.conf', pem)
const bad = (text: string, re: RegExp, what: string): void => {
  t.throws(() => parse(text), { code: 'BAD_OPTION', message: re }, what)
}

t.test('a full connection', async (t) => {
  const [c, d] = parse([
    '# cloud', 'connection cloud', 'url mqtts://broker.example.com:8883', 'client-id gw-7', 'username gw', 'password pw',
    'ca ca.pem', 'cert c.pem', 'key k.pem', 'keepalive 30', 'clean true', 'protocol 3.1.1', 'queue-max-messages 10',
    'queue-max-bytes 4096', 'max-inflight 5', 'reconnect-min-ms 500', 'reconnect-max-ms 5000',
    'topic sensors/# out 1 "" site7/', 'topic cmd/# in', 'topic "" both 0 local/state remote/state',
    '', 'connection two', 'url ws://h/mqtt', 'topic # both'
  ].join('\n'))
  t.match(c, { name: 'cloud', clientId: 'gw-7', username: 'gw', password: 'pw', keepalive: 30, clean: true, protocolVersion: 4, queueMaxMessages: 10, queueMaxBytes: 4096, maxInflight: 5 })
  t.same(c!.rules.map((r) => [r.localFilter, r.remoteFilter, r.direction, r.qos, r.line]), [
    ['sensors/#', 'site7/sensors/#', 'out', 1, 18], ['cmd/#', 'cmd/#', 'in', 0, 19], ['local/state', 'remote/state', 'both', 0, 20]
  ])
  t.match(d, { name: 'two', clientId: 'fusion-bridge-two', keepalive: 60, clean: false, protocolVersion: 5 })
})

t.test('errors name the line', async () => {
  bad('url mqtt://x', /line 1: url before the first "connection NAME"/, 'a key before a connection')
  bad('connection a\nurl http://x\ntopic #', /line 2: url must be mqtt/, 'a scheme we do not speak')
  bad('connection a\nurl mqtt://u:p@x\ntopic #', /line 2: put the user name/, 'credentials in the url')
  bad('connection a b', /line 1: connection takes one value/, 'two names')
  bad('connection a/b', /line 1: connection name/, 'a name with a slash')
  bad('connection a\nurl mqtt://x\ntopic a/#/b', /line 3: "a\/#\/b"/, 'a bad filter')
  bad('connection a\nurl mqtt://x\ntopic a/# sideways', /line 3: direction must be/, 'a bad direction')
  bad('connection a\nurl mqtt://x\ntopic a/# out 2', /line 3: qos 2 is not carried/, 'QoS 2')
  bad('connection a\nurl mqtt://x\ntopic a/# out 1 x/#/ y/', /line 3: local-prefix/, 'a wildcard prefix')
  bad('connection a\nurl mqtt://x\ntopic a/# out 1 x/', /line 3: topic takes/, 'one prefix')
  bad('connection a\nurl mqtt://x\nkeepalive 99999999', /line 3: keepalive must be a whole number from 0 to 65535/, 'a number out of range')
  bad('connection a\nurl mqtt://x\nfrobnicate 1', /line 3: unknown keyword "frobnicate"/, 'a typo')
  bad('connection a\nurl mqtt://x', /connection a \(line 1\): needs at least one topic line/, 'no rules')
  bad('connection a\ntopic #', /needs a url line/, 'no url')
  bad('connection a\nurl mqtt://x\ncert c.pem\ntopic #', /cert and key go together|need an mqtts/, 'cert without key')
  bad('connection a\nurl mqtt://x\ntopic #\nconnection a\nurl mqtt://y\ntopic #', /line 4: connection "a" is named twice/, 'a name twice')
})

t.test('bounds', async () => {
  bad('#'.repeat(MAX_FILE_BYTES + 1), /is over/, 'the file size')
  bad('connection a\n' + 'x'.repeat(5000), /line 2: the line is over 4096/, 'a long line')
  bad(['connection a', 'url mqtt://x', ...Array.from({ length: MAX_RULES + 1 }, (_, i) => `topic t${i}`)].join('\n'), new RegExp(`line ${MAX_RULES + 3}: more than ${MAX_RULES}`), 'too many rules')
  bad(Array.from({ length: 33 }, (_, i) => `connection c${i}\nurl mqtt://x\ntopic #`).join('\n'), /more than 32 connections/, 'too many connections')
})

t.test('rules: prefixes, first match wins, covered remote filters pruned', async (t) => {
  const [c] = parse(['connection a', 'url mqtt://x', 'topic sensors/# out 1 "" site/', 'topic sensors/t1 out 0 "" other/', 'topic cmd/# in 1 dev/ site/dev/', 'topic cmd/lamp/+ in 0 dev/ site/dev/', 'topic x/+/c both 1', 'topic x/b/# both 0'].join('\n'))
  const rules = new RuleSet(c!.rules)
  const out = rules.outRule('sensors/t1')!
  t.equal(toRemote(out, 'sensors/t1'), 'site/sensors/t1', 'first matching out rule')
  const inn = rules.inRule('site/dev/cmd/lamp/1')!
  t.equal(toLocal(inn, 'site/dev/cmd/lamp/1'), 'dev/cmd/lamp/1')
  t.same([...rules.remoteFilters], [['site/dev/cmd/#', 1], ['x/+/c', 1], ['x/b/#', 0]], 'site/dev/cmd/lamp/+ is covered by site/dev/cmd/#; partial overlaps stay')
  t.same(rules.localFilters, ['sensors/#', 'sensors/t1', 'x/+/c', 'x/b/#'])
  t.equal(rules.outRule('$SYS/x'), undefined, 'wildcards never take $ topics')
})

t.test('examples/bridge.conf parses', async (t) => {
  const { readFileSync } = await import('node:fs')
  const file = new URL('../../../../examples/bridge.conf', import.meta.url)
  const links = parseUpstreamConfig(readFileSync(file, 'utf8'), file.pathname, pem)
  t.same(links.map((l) => [l.name, l.rules.length]), [['cloud', 3], ['plant', 1]])
  t.equal(links[0]!.rules[2]!.remoteFilter, 'site-7/cmd/#')
})
