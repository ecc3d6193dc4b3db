// Real headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core,
// with the launch recipe of TOOLCHAIN.md. Every browser is closed at teardown.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page, type Locator } from 'playwright-core'
import { PROJECT_DIR } from './cli.js'
import { requireProgram } from './gateway.js'

export const CHROMIUM = '/usr/bin/chromium'
/** Screenshots land here (git-ignored). */
export const OUTPUT_DIR = join(PROJECT_DIR, 'test-output')

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** What the page tests need of tap's Test. */
export interface TapLike {
  fail: (msg: string) => unknown
  comment: (...msg: string[]) => unknown
  teardown (fn: () => unknown): void
}

/**
 * requireProgram for each [program, Debian package]: false (after a CI failure or a
 * laptop skip notice) when one is missing.
 */
export function requirePrograms (t: TapLike, programs: Array<[string, string]>): boolean {
  const adapter = {
    fail: (msg?: string): void => { t.fail(msg ?? 'missing program') },
    comment: (...msg: string[]): void => { t.comment(...msg) },
    skip: (msg?: string): void => { t.comment(`SKIP: ${msg ?? ''}`) }
  }
  return programs.every(([program, pkg]) => requireProgram(adapter, program, pkg))
}

export interface Browser {
  context: BrowserContext
  /** Console errors, uncaught page errors and dialogs (alert) seen on any page of this browser. */
  problems: string[]
  newPage (): Promise<Page>
}

/**
 * Launches Chromium with its own temporary profile: two of these are two users with
 * separate cookies. `viewport` defaults to a laptop screen.
 */
export async function launchBrowser (t: { teardown (fn: () => unknown): void }, opts: { viewport?: { width: number, height: number } } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'fusion-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20_000,
    args: ARGS,
    viewport: opts.viewport ?? { width: 1280, height: 860 }
  })
  t.teardown(async () => {
    await context.close().catch(() => {})
    rmSync(profile, { recursive: true, force: true })
  })
  const problems: string[] = []
  const watch = (page: Page): void => {
    page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`) })
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`))
    page.on('dialog', (dialog) => { problems.push(`dialog: ${dialog.type()} ${dialog.message()}`); void dialog.dismiss() })
  }
  context.on('page', watch)
  for (const page of context.pages()) watch(page)
  const handedOut = new Set<Page>()
  return {
    context,
    problems,
    async newPage () {
      // A persistent context opens with one blank page: hand that one out first.
      const blank = context.pages().find((p) => p.url() === 'about:blank' && !handedOut.has(p))
      const page = blank ?? await context.newPage()
      handedOut.add(page)
      page.setDefaultTimeout(10_000)
      return page
    }
  }
}

/** Saves a full-page screenshot under test-output/ and returns its path. */
export async function screenshot (page: Page, name: string): Promise<string> {
  mkdirSync(OUTPUT_DIR, { recursive: true })
  const path = join(OUTPUT_DIR, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/** The text of every chat message item whose text is exactly `text`. */
export function messagesWithText (page: Page, text: string): Locator {
  return page.getByTestId('message').filter({ has: page.getByTestId('message-text').getByText(text, { exact: true }) })
}

/** Waits until exactly one message with this text is shown, then checks it stays one. */
export async function expectOneMessage (page: Page, text: string, timeoutMs = 10_000): Promise<Locator> {
  const items = messagesWithText(page, text)
  await items.first().waitFor({ state: 'visible', timeout: timeoutMs })
  const n = await items.count()
  if (n !== 1) throw new Error(`"${text}" is shown ${n} times on ${page.url()}`)
  return items.first()
}

/** Waits for an element's data-state attribute to become `state`. */
export async function waitForState (page: Page, testId: string, state: string, timeoutMs = 15_000): Promise<void> {
  await page.locator(`[data-testid="${testId}"][data-state="${state}"]`).waitFor({ state: 'attached', timeout: timeoutMs })
}
