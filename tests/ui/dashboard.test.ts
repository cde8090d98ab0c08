import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getJson, historyOf, postJson, waitActive } from '../support/api-client.js'
import { launchBrowser, type WatchedPage, watchedPage } from '../support/browser.js'
import { addConstModel, classifierModel } from '../support/models.js'
import { serve } from '../support/servers.js'
import { dropVersion, writeFiles } from '../support/staging.js'
import type { TestServer } from '../support/test-server.js'

/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core, against
 * the real server. Each page records every request it makes (all must go to the server itself)
 * and every console error (there must be none). The README's screenshots are taken here.
 */

/**
 * The README's screenshots are written where the README shows them with UPDATE_SCREENSHOTS=1
 * (`UPDATE_SCREENSHOTS=1 npx vitest run tests/ui`); otherwise into a temporary folder, so a test run
 * leaves the clone as it was (the figures on a page differ from one run to the next).
 */
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS
  ? join(import.meta.dirname, '..', '..', 'docs', 'screenshots')
  : mkdtempSync(join(tmpdir(), 'modelgate-screenshots-'))
const TOKEN = 'dashboard-test-token-0123'
const WAIT_MS = 15_000

let browser: Browser
beforeAll(async () => {
  browser = await launchBrowser()
})
afterAll(() => browser?.close())

/** A page that is checked when the test ends: nothing from another origin, no console error. */
async function open(t: TestServer, path: string): Promise<WatchedPage> {
  const watched = await watchedPage(browser)
  await watched.page.goto(`${t.url}${path}`)
  return watched
}

async function checkedAndClosed(t: TestServer, w: WatchedPage) {
  await w.close()
  expect(w.requests.length).toBeGreaterThan(0)
  expect(w.offOrigin(new URL(t.url).origin)).toEqual([])
  expect(w.errors).toEqual([])
}

/** clf (a classifier with drift watched) at v2 on probation, v1 retained; adder at v1. */
async function deployment(env: Record<string, string> = {}) {
  const t = await serve(
    async (dir) => {
      await writeFiles(join(dir, 'clf'), {
        'model.json': '{"drift": {"window": 10, "intervalSeconds": 1}}',
      })
      await dropVersion(dir, 'clf', 1, classifierModel([1, 0, 0]))
      await dropVersion(dir, 'adder', 1, addConstModel(1))
    },
    {},
    env,
  )
  await traffic(t, 1) // v1's figures: the probation's baseline
  await dropVersion(t.modelsDir, 'clf', 2, classifierModel([1, 0.001, 0]))
  await waitActive(t.url, 'clf', 2)
  return t
}

/** Predictions, and feedback on them (nine right out of ten), so every figure has a value. */
async function traffic(t: TestServer, rounds: number) {
  for (let round = 0; round < rounds; round++) {
    const ids = Array.from({ length: 10 }, (_, i) => `r${round}-${i}`)
    for (const id of ids) {
      const x = [[Math.random(), Math.random(), Math.random()]]
      expect(
        (
          await postJson(
            `${t.url}/models/clf/predict`,
            { inputs: { x } },
            { 'x-prediction-id': id },
          )
        ).status,
      ).toBe(200)
      await postJson(`${t.url}/models/adder/predict`, { inputs: { x: [[1, 2, 3, 4]] } })
    }
    await postJson(`${t.url}/models/clf/feedback`, {
      items: ids.map((id, i) => ({ id, label: i === 0 ? 2 : 0 })),
    })
  }
}

/** Sends traffic until what the page shows makes `done` hold (checked between rounds). */
async function trafficUntil(t: TestServer, done: () => Promise<boolean>, what: string) {
  const deadline = Date.now() + WAIT_MS
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await traffic(t, 1)
  }
}

describe('the dashboard in a browser', () => {
  it('GET / leads a browser to the overview, which lists every model with live figures', async () => {
    const t = await deployment()
    await traffic(t, 3)
    const w = await open(t, '/')
    const { page } = w
    expect(new URL(page.url()).pathname).toBe('/ui')
    const clf = page.locator('tr[data-model="clf"]')
    await clf.waitFor()
    expect(await clf.locator('td').nth(0).textContent()).toBe('v2')
    // The rate and its sparkline come with the periodic reads, as traffic keeps coming.
    await trafficUntil(
      t,
      async () =>
        (await clf.locator('svg.sparkline').count()) > 0 &&
        /[1-9][\d.]*\/s/.test((await clf.locator('.rate').textContent()) ?? ''),
      'a request rate and a sparkline on the overview',
    )
    const row = await clf.textContent()
    expect(row).toContain('serving')
    expect(row).toContain('probation until')
    expect(row).toContain('0%') // errors
    expect(row).toContain('90.0%') // accuracy
    expect(row).toMatch(/\d ms/) // p99
    await page.locator('tr[data-model="adder"]').waitFor()
    await page.screenshot({ path: join(SCREENSHOTS, 'overview.png') })
    await checkedAndClosed(t, w)
  })

  it('shows a model: versions, gate stages, probation, drift and the history', async () => {
    const t = await deployment()
    await traffic(t, 3)
    const w = await open(t, '/ui/models/clf')
    const { page } = w
    await page.locator('tr[data-version="2"][data-status="active"]').waitFor()
    await page.locator('tr[data-version="1"][data-status="retained"]').waitFor()
    const gate = await page.locator('tr[data-version="2"] .stages').textContent()
    for (const stage of ['load', 'signature', 'smoke', 'latency', 'warmup'])
      expect(gate).toContain(stage)
    expect(await page.locator('#probation-title').textContent()).toContain('v2 against v1')
    expect(await page.locator('table.rules').textContent()).toContain('accuracy')
    // Drift: the first window is the reference; the features show once a live window is judged.
    expect(await page.locator('#drift-title + p').textContent()).toContain('Reference')
    const timeline = page.locator('ol.timeline li')
    expect(await timeline.first().textContent()).toContain('promoted v2')
    await page.locator('#live-state[data-state="live"]').waitFor({ timeout: WAIT_MS })
    // The rate and each feature's drift come as traffic does, without a reload.
    await trafficUntil(
      t,
      async () =>
        (await page.locator('.figures svg.sparkline').count()) > 0 &&
        (await page.locator('table.drift td').count()) > 0,
      'a request rate and drift on the model page',
    )
    expect(await page.locator('table.drift').textContent()).toContain('frequency')
    await page.screenshot({ path: join(SCREENSHOTS, 'model.png'), fullPage: true })
    await checkedAndClosed(t, w)
  })

  it('updates without a reload: a version dropped while the page is open appears', async () => {
    const t = await deployment()
    const w = await open(t, '/ui')
    const { page } = w
    // Gone if the page reloads: what follows must come from the live updates.
    // (Expressions as strings: they run in the page, whose globals these files are not typed with.)
    await page.evaluate('window.notReloaded = true')
    await page.locator('#live-state[data-state="live"]').waitFor({ timeout: WAIT_MS })
    await dropVersion(t.modelsDir, 'adder', 2, addConstModel(2))
    await page
      .locator('tr[data-model="adder"] td')
      .first()
      .filter({ hasText: /^v2$/ })
      .waitFor({ timeout: WAIT_MS })
    expect(await page.evaluate('window.notReloaded')).toBe(true)
    await checkedAndClosed(t, w)
  })

  it('rolls back when the button is clicked and confirmed; the API and the page show it', async () => {
    const t = await deployment()
    const w = await open(t, '/ui/models/clf')
    const { page } = w
    const questions: string[] = []
    page.on('dialog', (d) => {
      questions.push(d.message())
      void d.accept()
    })
    await page.getByLabel('Reason (for the history)').fill('seen in the browser test')
    await page.getByRole('button', { name: 'Roll back v2' }).click()
    await page
      .locator('#action-status:has-text("Rolled back clf: v2 → v1")')
      .waitFor({ timeout: WAIT_MS })
    expect(questions).toHaveLength(1)
    expect(questions[0]).toContain('Roll clf back?')
    expect((await getJson(`${t.url}/models/clf`)).body.active).toBe(1)
    const [entry] = (await historyOf(t.url, 'clf')).filter((e: any) => e.event === 'rolled_back')
    expect(entry).toMatchObject({ version: 2, to: 1, reason: 'seen in the browser test' })
    await page.locator('tr[data-version="1"][data-status="active"]').waitFor({ timeout: WAIT_MS })
    await page.locator('tr[data-version="2"][data-status="rolled_back"]').waitFor()
    await checkedAndClosed(t, w)
  })

  it('with an admin token set: asks for it once, keeps it for the tab, then shows the history', async () => {
    const t = await deployment({ MODELGATE_ADMIN_TOKEN: TOKEN })
    const w = await open(t, '/ui/models/clf')
    const { page } = w
    page.on('dialog', (d) => void d.accept())
    expect(await page.locator('#history-title + p').textContent()).toContain('admin token')
    await page.getByRole('button', { name: 'Promote v1' }).click()
    await page.getByRole('textbox', { name: 'Token' }).fill(TOKEN)
    await page.getByRole('button', { name: 'Use this token' }).click()
    await page
      .locator('#action-status:has-text("Promoted clf: v2 → v1")')
      .waitFor({ timeout: WAIT_MS })
    expect((await getJson(`${t.url}/models/clf`)).body.active).toBe(1)
    expect(await page.evaluate("sessionStorage.getItem('modelgate.adminToken')")).toBe(TOKEN)
    // The next reads send it: the history shows, and the events stream follows.
    await page.locator('ol.timeline li').first().waitFor({ timeout: WAIT_MS })
    await page.locator('#live-state[data-state="live"]').waitFor({ timeout: WAIT_MS })
    // Asked once: the next action goes straight to its confirmation.
    await page.getByRole('button', { name: 'Promote v2' }).click()
    await page
      .locator('#action-status:has-text("Promoted clf: v1 → v2")')
      .waitFor({ timeout: WAIT_MS })
    await checkedAndClosed(t, w)
  })
})
