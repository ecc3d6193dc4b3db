import { parseArgs } from 'node:util'
import { FusionError } from '../core/errors.js'
import { addUser, checkUsername, removeUser, MAX_PASSWORD_BYTES } from '../core/policy/users.js'
import { OPTIONS } from '../core/options.js'

// The same file and variable as the gateway's --users (the options schema).
const USERS_ENV = OPTIONS.users.env

// A gateway already running reads the file again on SIGHUP (src/cli/main.ts).
const RELOAD_HINT = '; a running gateway picks this up on SIGHUP (kill -HUP <pid>)'

export const USER_USAGE = `Usage: mqtt-fusion user add NAME --users FILE [--password-stdin] [--admin | --no-admin]
       mqtt-fusion user remove NAME --users FILE

  add      adds NAME to the users file (created, mode 0600, when missing) or sets a new
           password; the password is read from standard input: typed twice without
           echo on a terminal, else the first line (--password-stdin says so explicitly)
  --admin / --no-admin   marks NAME as an admin (the line ends in ":admin"; admins may
           use GET /api/acl/explain) or clears the mark; left out, a user keeps theirs
  remove   removes NAME
  --users FILE   the users file (${USERS_ENV}); the gateway reads the same file`

/** What the command needs of its process; main.ts passes the real ones. */
export interface UserCommandIo {
  readonly stdin: NodeJS.ReadStream
  readonly stdout: NodeJS.WritableStream
  readonly stderr: NodeJS.WritableStream
  readonly env: NodeJS.ProcessEnv
}

/** Reads the first line of a piped stdin, at most a few KiB. */
async function readPipedLine (stdin: NodeJS.ReadStream): Promise<string> {
  let text = ''
  for await (const chunk of stdin) {
    text += chunk.toString()
    if (text.includes('\n') || text.length > MAX_PASSWORD_BYTES * 4) break
  }
  return (text.split('\n')[0] ?? '').replace(/\r$/, '')
}

/** Prompts on stderr and reads one line from a terminal without echoing it. */
function readHidden (io: UserCommandIo, prompt: string): Promise<string> {
  const { stdin, stderr } = io
  stderr.write(prompt)
  return new Promise((resolve, reject) => {
    let value = ''
    stdin.setRawMode(true)
    stdin.resume()
    stdin.setEncoding('utf8')
    const done = (err?: Error): void => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      stderr.write('\n')
      if (err) reject(err)
      else resolve(value)
    }
    const onData = (data: string): void => {
      for (const ch of data) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\u0003' || ch === '\u0004') return done(new FusionError('BAD_OPTION', 'cancelled'))
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
        else if (ch >= ' ') value += ch
      }
    }
    stdin.on('data', onData)
  })
}

async function readPassword (io: UserCommandIo, fromStdin: boolean): Promise<string> {
  if (fromStdin || !io.stdin.isTTY) return readPipedLine(io.stdin)
  const first = await readHidden(io, 'Password: ')
  const again = await readHidden(io, 'Password again: ')
  if (first !== again) throw new FusionError('BAD_OPTION', 'the two passwords differ')
  return first
}

/**
 * `mqtt-fusion user ...`: manages the users file. Returns the exit code; throws a
 * BAD_OPTION FusionError for a usage problem.
 */
export async function runUserCommand (argv: readonly string[], io: UserCommandIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { users: { type: 'string' }, 'password-stdin': { type: 'boolean' }, admin: { type: 'boolean' }, 'no-admin': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true
    })
  } catch (err) {
    throw new FusionError('BAD_OPTION', `${(err as Error).message.split('\n')[0]?.replace(/\.$/, '')} (see mqtt-fusion user --help)`)
  }
  const { values, positionals } = parsed
  if (values.help || positionals.length === 0) { io.stdout.write(USER_USAGE + '\n'); return 0 }
  const [action, name, ...extra] = positionals
  if ((action !== 'add' && action !== 'remove') || name === undefined || extra.length > 0) {
    throw new FusionError('BAD_OPTION', 'expected: user add NAME or user remove NAME (see mqtt-fusion user --help)')
  }
  const file = values.users ?? io.env[USERS_ENV]
  if (!file) throw new FusionError('BAD_OPTION', `--users FILE is needed (or ${USERS_ENV})`)
  const bad = checkUsername(name)
  if (bad) throw new FusionError('BAD_OPTION', bad)
  if (action === 'remove') {
    const removed = removeUser(file, name)
    io.stderr.write(removed ? `mqtt-fusion: removed ${name} from ${file}${RELOAD_HINT}\n` : `mqtt-fusion: ${name} is not in ${file}\n`)
    return removed ? 0 : 1
  }
  if (values.admin && values['no-admin']) throw new FusionError('BAD_OPTION', '--admin and --no-admin contradict each other')
  const admin = values.admin ? true : values['no-admin'] ? false : undefined
  const password = await readPassword(io, values['password-stdin'] === true)
  if (password.length === 0) throw new FusionError('BAD_OPTION', 'the password must not be empty')
  const what = await addUser(file, name, password, admin)
  io.stderr.write(`mqtt-fusion: ${what} ${name} in ${file}${admin === true ? ' (admin)' : admin === false ? ' (not admin)' : ''}${RELOAD_HINT}\n`)
  return 0
}
