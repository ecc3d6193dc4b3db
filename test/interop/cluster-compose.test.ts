// docker-compose.cluster.yml and its HAProxy config, checked without an engine (none runs here).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_DIR } from '../helpers/cli.js'
import { needs } from '../helpers/cluster.js'

const FILE = 'docker-compose.cluster.yml'

t.test(`${FILE} validates: Redis, two nodes on it, a balancer on the usual ports`, async (t) => {
  if (!needs(t, 'docker-compose', 'docker-compose')) return
  const quiet = spawnSync('docker-compose', ['-f', FILE, 'config', '-q'], { cwd: PROJECT_DIR, encoding: 'utf8' })
  t.equal(quiet.status, 0, `docker-compose -f ${FILE} config -q: ${quiet.stderr}`)
  const r = spawnSync('docker-compose', ['-f', FILE, 'config'], { cwd: PROJECT_DIR, encoding: 'utf8' })
  t.equal(r.status, 0)
  const out = r.stdout
  const service = (name: string): string => {
    const m = new RegExp(`\\n  ${name}:\\n([\\s\\S]*?)(?=\\n  [a-z0-9-]+:\\n|\\n[a-z]|$)`).exec(out)
    return m?.[1] ?? ''
  }
  for (const name of ['redis', 'node1', 'node2', 'lb']) t.not(service(name), '', `service ${name}`)
  for (const name of ['node1', 'node2']) {
    t.match(service(name), /FUSION_REDIS_URL: redis:\/\/redis:6379/, `${name} uses the shared Redis`)
    t.match(service(name), /condition: service_healthy/, `${name} waits for Redis to answer`)
    t.notMatch(service(name), /published:/, `${name} publishes no port: clients go through the balancer`)
  }
  const lb = service('lb')
  t.match(lb, /published: "?3000"?/, 'the balancer publishes 3000 (pages, REST, /ws, /mqtt)')
  t.match(lb, /published: "?1883"?/, 'and 1883 (MQTT)')
  t.match(lb, /deploy\/haproxy\.cfg/, 'with the config from deploy/')
  t.match(service('redis'), /appendonly/, 'Redis keeps its data on disk')
})

t.test('deploy/haproxy.cfg balances both doors over both nodes and lets WebSockets live', async (t) => {
  const cfg = readFileSync(join(PROJECT_DIR, 'deploy', 'haproxy.cfg'), 'utf8')
  const section = (name: string): string => new RegExp(`\\n${name}\\n([\\s\\S]*?)(?=\\n\\S|$)`).exec(cfg)?.[1] ?? ''
  t.match(section('frontend http'), /bind :3000/)
  t.match(section('frontend http'), /mode http/, 'HTTP mode: WebSocket upgrades pass through')
  t.match(section('frontend mqtt'), /bind :1883/)
  t.match(section('frontend mqtt'), /mode tcp/)
  for (const b of ['backend gateways_http', 'backend gateways_mqtt']) {
    t.match(section(b), /server node1 node1:/, `${b} has node1`)
    t.match(section(b), /server node2 node2:/, `${b} has node2`)
    t.match(section(b), /httpchk GET \/api\/health/, `${b} stops sending new clients to a node that is not ready`)
  }
  t.match(cfg, /timeout tunnel \d+[hm]/, 'long-lived WebSocket and MQTT connections are not cut after the HTTP timeout')
})
