#!/usr/bin/env node
// @ts-check
// The chat of ws-chat.mjs, over MQTT/TCP with MQTT.js: publish on chat/<room>, subscribe
// to it, print `from: text`. What the hub does for a /ws client (the room topic, the
// envelope, the echo) is spelled out here, because MQTT knows only topics and bytes.
//
//   node examples/mqtt-chat.mjs --name alice --room lobby
//   echo 'hello' | node examples/mqtt-chat.mjs --url mqtt://localhost:1883 --name bot
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt'

const HELP = `usage: node examples/mqtt-chat.mjs [--url mqtt://localhost:1883] [--name NAME] [--room ROOM]

Reads chat lines from stdin and publishes each on chat/<room> as the chat envelope
{"from","text","ts","via":"mqtt"}; prints every message on chat/<room> as "from: text".
Ends when stdin ends (after the broker has echoed the lines sent) or on Ctrl-C.`

/** How long to wait, after stdin ends, for the broker to send our last lines back. */
const ECHO_WAIT_MS = 3000
/** Seconds of silence before the broker (and we) count the connection dead. */
const KEEPALIVE_S = 30

/**
 * The chat envelope of PROTOCOL.md. MQTT has no sender field, so the sender travels
 * in the payload; the gateway keeps it as it is.
 * @param {string} from
 * @param {string} text
 * @returns {string}
 */
function chatEnvelope (from, text) {
  return JSON.stringify({ from, text, ts: Date.now(), via: 'mqtt' })
}

/**
 * What a person reads for one chat payload: an envelope as `from: text`; any other
 * payload (mosquitto_pub -m hi) is the text itself, whose sender MQTT does not say.
 * @param {Buffer} payload
 * @returns {{ from?: string, text: string }}
 */
function readChat (payload) {
  const raw = payload.toString('utf8')
  if (raw.startsWith('{')) {
    try {
      const o = JSON.parse(raw)
      if (o && typeof o.text === 'string') return { from: typeof o.from === 'string' ? o.from : undefined, text: o.text }
    } catch {}
  }
  return { text: raw }
}

function main () {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'mqtt://localhost:1883' },
      name: { type: 'string' },
      room: { type: 'string', default: 'lobby' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help) { console.log(HELP); process.exit(0) }
  const name = values.name ?? `guest-${randomBytes(2).toString('hex')}`
  const topic = `chat/${values.room}`

  // The username is the name the gateway shows in presence frames; the client id only
  // has to be unique, or the broker would drop our other session with the same id.
  const client = mqtt.connect(values.url ?? '', {
    clientId: `chat-${name}-${randomBytes(3).toString('hex')}`,
    username: name,
    keepalive: KEEPALIVE_S,
    reconnectPeriod: 0,
    connectTimeout: 10_000
  })
  let sent = 0
  let echoed = 0
  /** @type {(() => void) | undefined} */
  let onEcho
  const end = () => client.end(false, {}, () => process.exit())

  client.on('message', (_topic, payload) => {
    const { from, text } = readChat(payload)
    console.log(from === undefined ? text : `${from}: ${text}`)
    if (from === name) { echoed++; onEcho?.() }
  })
  client.on('error', (err) => { console.error(`mqtt-chat: ${err.message}`); process.exitCode = 1 })
  client.on('close', () => { if (!client.disconnecting) { console.error('* connection closed'); process.exit(1) } })

  client.once('connect', async () => {
    // Subscribe before reading stdin, so the first line's echo is not missed.
    try {
      await client.subscribeAsync(topic, { qos: 1 })
    } catch (err) {
      console.error(`mqtt-chat: subscribe ${topic}: ${/** @type {Error} */ (err).message}`)
      process.exitCode = 1
      return end()
    }
    console.error(`* ${name} in ${topic} (${client.options.clientId})`)
    const rl = createInterface({ input: process.stdin, terminal: false })
    rl.on('line', (line) => {
      if (line.trim().length === 0) return
      client.publish(topic, chatEnvelope(name, line), { qos: 1 })
      sent++
    })
    rl.once('close', () => {
      if (echoed >= sent) return end()
      const timer = setTimeout(end, ECHO_WAIT_MS)
      onEcho = () => { if (echoed >= sent) { clearTimeout(timer); end() } }
    })
  })

  process.once('SIGINT', end)
  process.once('SIGTERM', end)
}

main()
