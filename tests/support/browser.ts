import { type Browser, chromium, type Page } from 'playwright-core'

/**
 * Headless Chromium from the system's packages (Debian's `chromium`, which .ci/run installs),
 * driven by playwright-core: it never downloads a browser of its own.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true })
}

export interface WatchedPage {
  readonly page: Page
  /** Every URL the page requested, in order. */
  readonly requests: string[]
  /** Console messages at error level, and errors the page did not catch. */
  readonly errors: string[]
  /** The requests that went anywhere but `origin`. */
  offOrigin(origin: string): string[]
  close(): Promise<void>
}

/**
 * A fresh page in a context of its own (its own sessionStorage), at a fixed size and in light
 * mode so screenshots are the same from one run to the next; it records every request and error.
 */
export async function watchedPage(browser: Browser): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: { width: 1200, height: 800 },
    colorScheme: 'light',
    reducedMotion: 'reduce',
  })
  const page = await context.newPage()
  const requests: string[] = []
  const errors: string[] = []
  page.on('request', (r) => requests.push(r.url()))
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`)
  })
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`))
  return {
    page,
    requests,
    errors,
    offOrigin: (origin) => requests.filter((u) => new URL(u).origin !== origin),
    close: () => context.close(),
  }
}
