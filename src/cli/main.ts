#!/usr/bin/env node
import { createGateway, type LogFn } from '../gateway.js'
import { FusionError } from '../core/errors.js'
import { VERSION } from '../core/version.js'
import { parseCli } from './args.js'
import { usage } from './options-text.js'
import { runUserCommand } from './user-command.js'
import { runAclCommand } from './acl-command.js'

// The only module that reads process.env or calls process.exit.

const log: LogFn = (level, msg, err) => {
  const detail = err instanceof Error ? `: ${err.message}` : err !== undefined ? `: ${String(err)}` : ''
  process.stderr.write(`mqtt-fusion ${level}: ${msg}${detail}\n`)
}

function fail (err: unknown): never {
  if (err instanceof FusionError) {
    process.stderr.write(`mqtt-fusion: ${err.message}\n`)
    process.exit(err.code === 'BAD_OPTION' ? 2 : 1)
  }
  process.stderr.write(`mqtt-fusion: could not start: ${(err as Error)?.message ?? String(err)}\n`)
  process.exit(1)
}

async function main (): Promise<void> {
  if (process.argv[2] === 'user') {
    process.exitCode = await runUserCommand(process.argv.slice(3), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env })
    return
  }
  if (process.argv[2] === 'acl') {
    process.exitCode = runAclCommand(process.argv.slice(3), { stdout: process.stdout, stderr: process.stderr, env: process.env })
    return
  }
  const req = parseCli(process.argv.slice(2), process.env)
  if (req.help) { process.stdout.write(usage() + '\n'); return }
  if (req.version) { process.stdout.write(`mqtt-fusion ${VERSION}\n`); return }
  const gateway = await createGateway(req.options, { log })
  // With --redis the shared state lives in Redis whatever the local store is.
  if (gateway.options.memory && !gateway.options.redis) process.stderr.write('mqtt-fusion: --memory: nothing is kept on disk; history, retained messages and sessions end with the process\n')
  let urls
  try {
    urls = await gateway.listen()
  } catch (err) {
    await gateway.close().catch(() => {})
    throw err
  }
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) { process.exit(1) } // a second signal: the user means it
    stopping = true
    const deadline = setTimeout(() => {
      log('warn', `shutdown took too long after ${signal}; exiting`)
      process.exit(1)
    }, gateway.options.closeTimeoutMs + 5000)
    deadline.unref()
    gateway.close().then(() => process.exit(0), (err) => { log('error', 'shutdown failed', err); process.exit(1) })
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  // As Mosquitto does: SIGHUP rereads the users and ACL files; a bad file changes nothing.
  process.on('SIGHUP', () => {
    try {
      const done = gateway.reload()
      log('info', done.length ? `reloaded ${done.join('; ')}` : 'SIGHUP: nothing to reload (no --users, no --acl)')
    } catch (err) {
      log('error', `SIGHUP: nothing reloaded, the previous users and rules stay: ${(err as Error).message}`)
    }
  })
  // The TLS doors, when on, follow the four keys every reader knows.
  const tls = (['https', 'wss', 'mqtt-wss', 'mqtts'] as const).filter((k) => urls[k]).map((k) => ` ${k}=${urls[k]}`).join('')
  process.stdout.write(`mqtt-fusion ready http=${urls.http} ws=${urls.ws} mqtt-ws=${urls['mqtt-ws']} mqtt=${urls.mqtt}${tls}\n`)
}

main().catch(fail)
