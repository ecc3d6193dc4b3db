// The chat page rides out a gateway restart: it reconnects by itself, catches up
// on what it missed, shows nothing twice, and keeps chatting.
import t from 'tap'
import { spawn } from 'node:child_process'
import { startCli } from '../helpers/cli.js'
import { launchBrowser, requirePrograms, screenshot, expectOneMessage, messagesWithText, waitForState } from '../helpers/browser.js'
import type { Page } from 'playwright-core'

function mosquittoPub (port: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const proc = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    proc.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => proc.kill('SIGKILL'), 8000)
    proc.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`mosquitto_pub exited ${code}: ${err}`))
    })
  })
}

async function say (page: Page, text: string): Promise<void> {
  await page.getByTestId('message-input').fill(text)
  await page.getByTestId('message-input').press('Enter')
}

/** While the gateway is down Chromium reports the refused connections; nothing else may appear. */
const expectedWhileDown = /WebSocket connection to '.*' failed|net::ERR_CONNECTION_REFUSED|Failed to load resource/

t.test('the chat page reconnects after a gateway restart without repeating messages', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium'], ['mosquitto_pub', 'mosquitto-clients']])) return
  const first = await startCli(t)
  const httpPort = new URL(first.urls.http).port
  const mqttPort = new URL(first.urls.mqtt).port
  const room = 'e2e-restart'

  const browser = await launchBrowser(t)
  const a = await browser.newPage()
  const b = await browser.newPage()
  await Promise.all([a.goto(`${first.urls.http}/?room=${room}`), b.goto(`${first.urls.http}/?room=${room}`)])
  await Promise.all([waitForState(a, 'status', 'online'), waitForState(b, 'status', 'online')])

  await say(a, 'before the restart')
  await mosquittoPub(mqttPort, ['-i', 'e2e-device', '-t', `chat/${room}`, '-m', 'a device before the restart'])
  for (const page of [a, b]) {
    await expectOneMessage(page, 'before the restart')
    await expectOneMessage(page, 'a device before the restart')
  }

  const stopped = await first.stop('SIGTERM')
  t.equal(stopped.code, 0, 'the gateway stopped cleanly on SIGTERM')
  await Promise.all([a, b].map((page) => page.locator('[data-testid="status"]:not([data-state="online"])').waitFor({ state: 'attached' })))
  t.pass('both pages saw the connection go')

  // Same ports, same data directory: what a restart by hand or by systemd does.
  const second = await startCli(t, ['--http-port', httpPort, '--mqtt-port', mqttPort, '--data-dir', first.dataDir as string])
  t.equal(new URL(second.urls.http).port, httpPort, 'the new gateway took the same HTTP port')
  // Possibly before the pages are back: either way it must show, once.
  await mosquittoPub(mqttPort, ['-i', 'e2e-device', '-t', `chat/${room}`, '-m', 'sent while the pages were away'])

  await Promise.all([waitForState(a, 'status', 'online', 25_000), waitForState(b, 'status', 'online', 25_000)])
  t.pass('both pages reconnected by themselves')

  for (const page of [a, b]) {
    await expectOneMessage(page, 'sent while the pages were away')
    t.equal(await messagesWithText(page, 'before the restart').count(), 1, 'an earlier message is not repeated')
    t.equal(await messagesWithText(page, 'a device before the restart').count(), 1, 'nor is a device message')
  }

  await say(b, 'after the restart')
  await say(a, 'and still chatting')
  for (const page of [a, b]) {
    await expectOneMessage(page, 'after the restart')
    await expectOneMessage(page, 'and still chatting')
  }
  t.equal(await a.getByTestId('message').count(), 5, 'five messages, each once')
  // Both pages share a cookie (one browser), so only the connection tells whose message is whose.
  t.match(await messagesWithText(a, 'and still chatting').getAttribute('class'), /\bmine\b/, 'its own message is marked as its own')
  t.notMatch(await messagesWithText(a, 'after the restart').getAttribute('class'), /\bmine\b/, 'the other page\'s message is not')
  await screenshot(a, 'chat-after-restart')

  const unexpected = browser.problems.filter((p) => !expectedWhileDown.test(p))
  t.same(unexpected, [], 'no console errors besides the refused connections while the gateway was down')
})
