// The compose file and Dockerfile are checked without an engine (none runs here).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { requireProgram } from '../helpers/gateway.js'
import { PROJECT_DIR } from '../helpers/cli.js'

t.test('docker-compose.yml validates and names the ports, the volume and a build', async (t) => {
  if (!requireProgram(t, 'docker-compose', 'docker-compose')) return
  const r = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: PROJECT_DIR, encoding: 'utf8' })
  t.equal(r.status, 0, `docker-compose config: ${r.stderr}`)
  t.match(r.stdout, /published: "?1883"?|1883:1883/, 'MQTT port published')
  t.match(r.stdout, /published: "?3000"?|3000:3000/, 'HTTP port published')
  t.match(r.stdout, /fusion-data/, 'a named volume for the data')
  t.match(r.stdout, /build:/, 'built from the Dockerfile')
})

t.test('the Dockerfile runs the built CLI with its data in the volume', async (t) => {
  const df = readFileSync(join(PROJECT_DIR, 'Dockerfile'), 'utf8')
  t.match(df, /CMD \["node", "dist\/cli\/main\.js"\]/)
  t.match(df, /FUSION_DATA_DIR=\/data/)
  t.match(df, /EXPOSE 1883 3000/)
})
