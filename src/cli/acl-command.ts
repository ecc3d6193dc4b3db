import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { FusionError } from '../core/errors.js'
import { createFileAcl, parseAclRules } from '../core/policy/acl-file.js'
import type { AclDecision } from '../core/policy/acl.js'
import { checkUsername } from '../core/policy/users.js'

export const ACL_USAGE = `Usage: mqtt-fusion acl check --acl FILE [--user NAME] [--client ID] read|write TOPIC_OR_FILTER

  Says whether the rules file allows it, and which rule decided: the file and line, a
  built-in rule ($ topics, presence/<clientId>), or the default (nothing is allowed
  unless a rule allows it). The gateway decides with the same code.

  read     a subscription to TOPIC_OR_FILTER (wildcards allowed)
  write    a publish to TOPIC_OR_FILTER (a topic name, no wildcards)
  --acl FILE     the rules file (FUSION_ACL)
  --user NAME    the user logged in; left out: an anonymous client
  --client ID    the client id (for %c patterns and presence/<id>); left out, no %c
                 pattern matches
  --json         print the decision as one JSON object

  Exit status: 0 allowed, 1 denied, 2 bad input (usage, unreadable or bad file, bad topic).`

export interface AclCommandIo {
  readonly stdout: NodeJS.WritableStream
  readonly stderr: NodeJS.WritableStream
  readonly env: NodeJS.ProcessEnv
}

/** The largest rules file read (bytes): a rules file is text a person writes. */
const MAX_ACL_BYTES = 16 * 1024 * 1024

/** How a decision reads: first line the answer, second the reason. */
export function formatDecision (d: AclDecision, access: 'read' | 'write', target: string, user: string | undefined, client: string | undefined): string {
  const who = `${user === undefined ? 'anonymous' : `user ${user}`}${client === undefined ? '' : ` (client ${client})`}`
  const what = access === 'read' ? `subscribe to ${target}` : `publish to ${target}`
  const reason = d.by === 'rule' && d.rule
    ? `rule ${d.rule.file}:${d.rule.line}: ${d.rule.text}${d.rule.section === 'anonymous' || d.rule.section === 'pattern' ? ` (${d.rule.section})` : ` (under ${d.rule.section})`}`
    : d.by === 'builtin' ? d.detail : `default: ${d.detail}`
  return `${d.allowed ? 'allowed' : 'denied'}: ${who} may${d.allowed ? '' : ' not'} ${what}\n  ${reason}\n`
}

/**
 * `mqtt-fusion acl check ...`. Returns the exit code (0 allowed, 1 denied, 2 bad input);
 * prints its own errors, so a bad topic is 2 like any other bad input.
 */
export function runAclCommand (argv: readonly string[], io: AclCommandIo): number {
  try {
    return check(argv, io)
  } catch (err) {
    if (!(err instanceof FusionError)) throw err
    io.stderr.write(`mqtt-fusion acl: ${err.message}\n`)
    return 2
  }
}

function check (argv: readonly string[], io: AclCommandIo): number {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        acl: { type: 'string' },
        user: { type: 'string' },
        client: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: true
    })
  } catch (err) {
    throw new FusionError('BAD_OPTION', `${(err as Error).message.split('\n')[0]?.replace(/\.$/, '')} (see mqtt-fusion acl --help)`)
  }
  const { values, positionals } = parsed
  if (values.help || positionals.length === 0) { io.stdout.write(ACL_USAGE + '\n'); return positionals.length === 0 && !values.help ? 2 : 0 }
  const [action, access, target, ...extra] = positionals
  if (action !== 'check' || (access !== 'read' && access !== 'write') || target === undefined || extra.length > 0) {
    throw new FusionError('BAD_OPTION', 'expected: acl check read|write TOPIC_OR_FILTER (see mqtt-fusion acl --help)')
  }
  const file = values.acl ?? io.env.FUSION_ACL
  if (!file) throw new FusionError('BAD_OPTION', '--acl FILE is needed (or FUSION_ACL)')
  if (values.user !== undefined) {
    const bad = checkUsername(values.user)
    if (bad) throw new FusionError('BAD_OPTION', `--user: ${bad}`)
  }
  if (values.client !== undefined && values.client.length === 0) throw new FusionError('BAD_OPTION', '--client must not be empty')
  let text: string
  try {
    const buf = readFileSync(file)
    if (buf.length > MAX_ACL_BYTES) throw new FusionError('BAD_OPTION', `--acl ${file} is over ${MAX_ACL_BYTES} bytes`)
    text = buf.toString('utf8')
  } catch (err) {
    if (err instanceof FusionError) throw err
    throw new FusionError('BAD_OPTION', `--acl ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  const acl = createFileAcl(parseAclRules(text, file))
  const decision = acl.explain?.({ username: values.user, clientId: values.client }, access, target)
  if (!decision) throw new FusionError('INTERNAL', 'the file ACL cannot explain')
  if (values.json) {
    io.stdout.write(JSON.stringify({ access, topic: target, user: values.user ?? null, client: values.client ?? null, ...decision }) + '\n')
  } else {
    io.stdout.write(formatDecision(decision, access, target, values.user, values.client))
  }
  return decision.allowed ? 0 : 1
}
