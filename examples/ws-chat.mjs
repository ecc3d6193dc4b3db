#!/usr/bin/env node
// @ts-check
// A command-line chat over the plain WebSocket hub (/ws): every line typed (or piped)
// on stdin is a chat line in the room; what arrives is printed as `from: text`.
//
//   node examples/ws-chat.mjs --name alice --room lobby
//   echo 'hello' | node examples/ws-chat.mjs --name bot --format text
//   node examples/ws-chat.mjs --echo        # check the connection against /echo, then exit
//
// Compare with mqtt-chat.mjs: the same chat over MQTT/TCP.
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'

const HELP = `usage: node examples/ws-chat.mjs [--url ws://localhost:3000/ws] [--name NAME] [--room ROOM] [--format json|text] [--token TOKEN]
       node examples/ws-chat.mjs --echo [--url ws://localhost:3000/ws] [--token TOKEN]

Reads chat lines from stdin, prints what arrives. With --format text the gateway sends
plain "name: text" lines and nothing else. Ends when stdin ends (after the gateway has
echoed the lines sent) or on Ctrl-C.

--echo checks the connection instead: it opens the gateway's echo door (/echo on the
same host and port as --url), sends a text and a binary message, checks both come back
unchanged, prints the round trip and exits 0 (1 when something failed). Nothing is
published. --token passes a login token (auth on) as ?token=.`

/** How long to wait, after stdin ends, for the gateway to echo our last lines. */
const ECHO_WAIT_MS = 3000
/** How long --echo waits for the connection and each echo. */
const ECHO_CHECK_TIMEOUT_MS = 5000
/** The same, when we cannot recognise our echoes (format=text without --name). */
const UNNAMED_LINGER_MS = 500
// 1000 normal, 1001 going away (the gateway shutting down): ends that are not errors.
const WS_NORMAL = 1000
const WS_GOING_AWAY = 1001

/**
 * @typedef {{ url: string, name?: string, room?: string, format: 'json' | 'text', token?: string, echo: boolean }} ChatOptions
 */

/** @returns {ChatOptions} */
function readOptions () {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'ws://localhost:3000/ws' },
      name: { type: 'string' },
      room: { type: 'string' },
      format: { type: 'string', default: 'json' },
      token: { type: 'string' },
      echo: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help) { console.log(HELP); process.exit(0) }
  if (values.format !== 'json' && values.format !== 'text') {
    console.error(`ws-chat: --format must be json or text, not ${values.format}`)
    process.exit(2)
  }
  return { url: values.url ?? '', name: values.name, room: values.room, format: values.format, token: values.token, echo: values.echo === true }
}

/**
 * Turns one server frame into what a person reads: chat on stdout, the rest on stderr.
 * @param {Record<string, any>} f
 * @returns {{ out?: string, err?: string }}
 */
function describe (f) {
  switch (f.type) {
    case 'welcome': return { err: `* ${f.name} in room ${f.room} (${f.clientId})` }
    case 'history': return { out: f.messages.map((/** @type {any} */ m) => `${m.from}: ${m.payload}`).join('\n') || undefined }
    case 'message': return f.topic.startsWith('chat/') ? { out: `${f.from}: ${f.payload}` } : { out: `${f.topic} ${f.payload}` }
    case 'presence': return { err: `* ${f.name} is ${f.status} (${f.via})` }
    case 'error': return { err: `! ${f.code}: ${f.message}` }
    default: return {}
  }
}

/**
 * --echo: one text and one binary message through /echo, both must come back unchanged.
 * @param {ChatOptions} opts
 */
function checkEcho (opts) {
  const url = new URL(opts.url)
  url.pathname = '/echo'
  url.search = ''
  if (opts.token) url.searchParams.set('token', opts.token)
  const shown = `${url.protocol}//${url.host}/echo`
  const text = `ws-chat echo check ${new Date().toISOString()} ✓`
  const binary = Buffer.from([0, 1, 2, 0xfe, 0xff, ...Buffer.from(text)])
  /** @param {string} why */
  const fail = (why) => { console.error(`echo: ${shown}: ${why}`); process.exit(1) }
  const timer = setTimeout(() => fail(`no answer within ${ECHO_CHECK_TIMEOUT_MS} ms`), ECHO_CHECK_TIMEOUT_MS)
  const ws = new WebSocket(url)
  let t0 = 0
  /** @type {number[]} */
  const rtts = []
  ws.on('unexpected-response', (_req, res) => fail(`the upgrade was refused: HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim()))
  ws.on('error', (err) => fail(err.message))
  ws.on('close', (code) => { if (rtts.length < 2) fail(`closed ${code} before both echoes came back`) })
  ws.once('open', () => { t0 = performance.now(); ws.send(text) })
  ws.on('message', (data, isBinary) => {
    const buf = /** @type {Buffer} */ (data)
    rtts.push(performance.now() - t0)
    if (rtts.length === 1) {
      if (isBinary || buf.toString('utf8') !== text) fail('the text message came back changed')
      t0 = performance.now()
      ws.send(binary)
      return
    }
    if (!isBinary || !buf.equals(binary)) fail('the binary message came back changed')
    clearTimeout(timer)
    console.log(`echo ok: ${shown} sent text and binary back unchanged (round trip ${rtts.map((r) => r.toFixed(1)).join(' ms, ')} ms)`)
    ws.close(WS_NORMAL)
  })
}

function main () {
  const opts = readOptions()
  if (opts.echo) return checkEcho(opts)
  const url = new URL(opts.url)
  if (opts.token) url.searchParams.set('token', opts.token)
  if (opts.name) url.searchParams.set('name', opts.name)
  if (opts.room) url.searchParams.set('room', opts.room)
  if (opts.format === 'text') url.searchParams.set('format', 'text')

  const ws = new WebSocket(url)
  /** Our display name: from --name, or the one the gateway chose (json only). */
  let myName = opts.name
  let sent = 0
  let echoed = 0
  /** @type {(() => void) | undefined} */
  let onEcho

  ws.on('message', (data) => {
    const text = data.toString()
    if (opts.format === 'text') {
      console.log(text)
      if (myName && text.startsWith(`${myName}: `)) { echoed++; onEcho?.() }
      return
    }
    /** @type {Record<string, any>} */
    let f
    try { f = JSON.parse(text) } catch { console.log(text); return }
    if (f.type === 'welcome') { myName = f.name; readStdin() }
    const { out, err } = describe(f)
    if (out) console.log(out)
    if (err) console.error(err)
    if (f.type === 'message' && f.via === 'ws' && f.from === myName) { echoed++; onEcho?.() }
  })
  ws.on('error', (err) => { console.error(`ws-chat: ${err.message}`); process.exitCode = 1 })
  ws.on('close', (code, reason) => {
    if (code !== WS_NORMAL && code !== WS_GOING_AWAY) process.exitCode = 1
    if (code !== WS_NORMAL) console.error(`* closed ${code} ${reason.toString()}`.trim())
    process.exit()
  })

  // json: read stdin once the welcome names us; text: there is no welcome.
  ws.once('open', () => { if (opts.format === 'text') readStdin() })
  let reading = false
  function readStdin () {
    if (reading) return
    reading = true
    const rl = createInterface({ input: process.stdin, terminal: false })
    rl.on('line', (line) => {
      if (line.trim().length === 0) return
      // A line that looks like JSON would be read as a JSON frame: wrap it as a chat
      // frame instead. Every other line goes as it is, the smallest client's way.
      ws.send(line.startsWith('{') ? JSON.stringify({ type: 'chat', text: line }) : line)
      sent++
    })
    rl.once('close', () => {
      // Piped input ends at once: give the gateway time to take and echo our lines.
      // Without a name (format=text, no --name) our echoes cannot be told apart.
      const done = () => ws.close(WS_NORMAL)
      if (echoed >= sent) return done()
      const timer = setTimeout(done, myName ? ECHO_WAIT_MS : UNNAMED_LINGER_MS)
      onEcho = () => { if (echoed >= sent) { clearTimeout(timer); done() } }
    })
  }

  process.once('SIGINT', () => ws.close(WS_NORMAL))
  process.once('SIGTERM', () => ws.close(WS_NORMAL))
}

main()
