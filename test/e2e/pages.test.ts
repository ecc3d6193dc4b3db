// The chat page in real Chromium against the built gateway: two people, a device,
// history, names, rooms, safety, a phone-sized screen.
import t from 'tap'
import { spawn } from 'node:child_process'
import { startCli } from '../helpers/cli.js'
import { launchBrowser, requirePrograms, screenshot, expectOneMessage, messagesWithText, waitForState } from '../helpers/browser.js'
import type { Page } from 'playwright-core'

/** Runs mosquitto_pub to completion (bounded) and fails on a non-zero exit. */
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

const activeId = (page: Page): Promise<string> => page.evaluate(() => (globalThis as any).document.activeElement?.id ?? '')

t.test('the chat page: both ways, a device, history, names, rooms, safety', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium'], ['mosquitto_pub', 'mosquitto-clients']])) return
  const gw = await startCli(t)
  const mqttPort = new URL(gw.urls.mqtt).port
  const room = 'e2e-chat'
  const url = `${gw.urls.http}/?room=${room}`

  const alice = await launchBrowser(t)
  const bob = await launchBrowser(t)
  const a = await alice.newPage()
  const b = await bob.newPage()
  await Promise.all([a.goto(url), b.goto(url)])
  await Promise.all([waitForState(a, 'status', 'online'), waitForState(b, 'status', 'online')])

  // Each visitor got a random name, stored in the cookie the hub reads.
  const nameA = await a.getByTestId('name-input').inputValue()
  const nameB = await b.getByTestId('name-input').inputValue()
  t.match(nameA, /^[a-z]+-[a-z]+-\d+$/, 'a random name on the first visit')
  t.not(nameA, nameB, 'two visitors, two names')
  const cookieA = (await alice.context.cookies()).find((c) => c.name === 'fusion_name')
  t.equal(cookieA && decodeURIComponent(cookieA.value), nameA, 'the name is in the fusion_name cookie')
  t.equal(await a.getByTestId('room-name').textContent(), room, 'the room from the URL')
  t.match(await a.getByTestId('greeting').textContent(), nameA, 'the greeting names the visitor')
  t.equal(await activeId(a), 'message-input', 'the message box has the focus on load')

  // Presence: each sees the other among the people.
  await a.getByTestId('presence-people').getByText(nameB).waitFor()
  await b.getByTestId('presence-people').getByText(nameA).waitFor()

  await say(a, 'hello from alice')
  for (const page of [a, b]) {
    const item = await expectOneMessage(page, 'hello from alice')
    t.equal(await item.getByTestId('message-from').textContent(), nameA, 'the sender is shown')
    t.equal(await item.getByTestId('message-via').textContent(), 'browser', 'it came from a browser')
    t.match(await item.getByTestId('message-time').textContent(), /\d{1,2}:\d{2}/, 'with a time')
  }
  t.equal(await a.getByTestId('message-input').inputValue(), '', 'Enter sent and emptied the box')
  t.equal(await activeId(a), 'message-input', 'the box keeps the focus after sending')

  await say(b, 'hi back from bob')
  for (const page of [a, b]) await expectOneMessage(page, 'hi back from bob')

  await mosquittoPub(mqttPort, ['-i', 'e2e-thermo', '-t', `chat/${room}`, '-m', 'reading from a device'])
  for (const page of [a, b]) {
    const item = await expectOneMessage(page, 'reading from a device')
    t.equal(await item.getByTestId('message-from').textContent(), 'e2e-thermo', 'an MQTT message is sent by its client id')
    t.equal(await item.getByTestId('message-via').textContent(), 'MQTT device', 'and shown as from an MQTT device')
  }

  const xss = '<img src=x onerror=alert(1)>'
  await say(a, xss)
  for (const page of [a, b]) {
    await expectOneMessage(page, xss)
    t.equal(await page.getByTestId('messages').locator('img').count(), 0, 'the markup stayed text')
  }

  // Every message exactly once, in both views.
  for (const page of [a, b]) {
    for (const text of ['hello from alice', 'hi back from bob', 'reading from a device', xss]) {
      t.equal(await messagesWithText(page, text).count(), 1, `"${text}" once`)
    }
  }

  // A reload keeps the name and brings the room's history, each message once.
  await a.reload()
  await waitForState(a, 'status', 'online')
  t.equal(await a.getByTestId('name-input').inputValue(), nameA, 'the cookie name is kept across a reload')
  for (const text of ['hello from alice', 'hi back from bob', 'reading from a device', xss]) await expectOneMessage(a, text)

  // A new name, kept in the cookie and used for what is sent next.
  await a.getByTestId('name-input').fill('Alice Liddell')
  await a.getByTestId('name-input').press('Enter')
  await waitForState(a, 'status', 'online')
  await a.getByTestId('greeting').getByText('Alice Liddell').waitFor()
  await say(a, 'now under a new name')
  const renamed = await expectOneMessage(b, 'now under a new name')
  t.equal(await renamed.getByTestId('message-from').textContent(), 'Alice Liddell', 'the other side sees the new name')
  await a.reload()
  await waitForState(a, 'status', 'online')
  t.equal(await a.getByTestId('name-input').inputValue(), 'Alice Liddell', 'the new name survives a reload')
  await expectOneMessage(a, 'now under a new name')

  // Clear empties this view only.
  await a.getByTestId('clear').click()
  t.equal(await a.getByTestId('message').count(), 0, 'clear empties the view')
  t.equal(await messagesWithText(b, 'hello from alice').count(), 1, 'the other view keeps its messages')
  t.equal(await activeId(a), 'message-input', 'focus goes back to the message box')

  await screenshot(b, 'chat-desktop')

  // Another room: created by name, in the URL, separate traffic.
  await a.getByTestId('room-input').fill('side-room')
  await a.getByTestId('room-input').press('Enter')
  await waitForState(a, 'status', 'online')
  t.match(a.url(), /[?&]room=side-room\b/, 'the room is in the URL')
  t.equal(await a.getByTestId('room-name').textContent(), 'side-room')
  await say(a, 'only in the side room')
  await expectOneMessage(a, 'only in the side room')
  await say(b, 'still in the first room')
  await expectOneMessage(b, 'still in the first room')
  t.equal(await messagesWithText(b, 'only in the side room').count(), 0, 'another room does not leak into this one')
  t.equal(await messagesWithText(a, 'still in the first room').count(), 0, 'nor the other way')
  // Back to the first room by the list of rooms, with the keyboard.
  await a.getByTestId('room-link').filter({ hasText: `#${room}` }).focus()
  await a.keyboard.press('Enter')
  await waitForState(a, 'status', 'online')
  await expectOneMessage(a, 'still in the first room')
  t.match(a.url(), new RegExp(`[?&]room=${room}\\b`))

  t.same(alice.problems, [], 'no console errors, page errors or dialogs for the first visitor')
  t.same(bob.problems, [], 'no console errors, page errors or dialogs for the second visitor')
})

t.test('the chat page on a phone-sized screen', async (t) => {
  if (!requirePrograms(t, [['chromium', 'chromium']])) return
  const gw = await startCli(t, ['--memory'])
  const phone = await launchBrowser(t, { viewport: { width: 390, height: 780 } })
  const page = await phone.newPage()
  await page.goto(`${gw.urls.http}/?room=phone`)
  await waitForState(page, 'status', 'online')
  await say(page, 'typed on a small screen')
  await expectOneMessage(page, 'typed on a small screen')
  const overflow = await page.evaluate(() => {
    const d = (globalThis as any).document.documentElement
    return d.scrollWidth - d.clientWidth
  })
  t.ok(overflow <= 0, `nothing sticks out sideways (overflow ${overflow}px)`)
  t.ok(await page.getByTestId('message-input').isVisible(), 'the message box is on screen')
  await screenshot(page, 'chat-phone')
  t.same(phone.problems, [], 'no console errors')
})
