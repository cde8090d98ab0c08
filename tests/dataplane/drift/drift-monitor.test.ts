import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  eventsOf,
  historyOf,
  metricValue,
  modelDetail,
  postJson,
} from '../../support/api-client.js'
import { serve } from '../../support/servers.js'
import { dropVersion } from '../../support/staging.js'
import { waitFor } from '../../support/wait-for.js'
import { seeded } from '../../support/seeded.js'

/**
 * Drift on the bundled iris model (input `features` [batch, 4] float32, output `label`): rows
 * drawn from one distribution, then with one column moved out of it, then from it again.
 */

const IRIS = join(import.meta.dirname, '..', '..', '..', 'models', 'iris')
const BATCH = 50

/** `n` iris-like rows; `shift` is added to column `column`. */
function rows(n: number, seed: number, shift?: { column: number; by: number }): number[][] {
  const u = seeded(seed)
  return Array.from({ length: n }, () => {
    const row = [4.3 + 3.6 * u(), 2 + 2.4 * u(), 1 + 5.9 * u(), 0.1 + 2.4 * u()]
    if (shift) row[shift.column]! += shift.by
    return row
  })
}

async function send(url: string, all: number[][]): Promise<void> {
  for (let i = 0; i < all.length; i += BATCH) {
    const r = await postJson(`${url}/models/iris/predict`, {
      inputs: { features: all.slice(i, i + BATCH) },
    })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
  }
}

async function withIris(dir: string, drift: object, files: Record<string, string> = {}) {
  await cp(IRIS, join(dir, 'iris'), { recursive: true })
  await writeFile(
    join(dir, 'iris', 'model.json'),
    JSON.stringify({ session: { intraOpNumThreads: 1 }, drift }),
  )
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'iris', name), text)
}

async function driftOf(url: string): Promise<any> {
  return (await modelDetail(url, 'iris')).drift
}

/** Waits until the drift view passes `check`; returns it. */
async function waitDrift(url: string, check: (view: any) => boolean, what: string): Promise<any> {
  let view: any
  await waitFor(async () => {
    view = await driftOf(url)
    return check(view)
  }, what)
  return view
}

/** The reference is known: reference.json read, or none there. */
const referenceKnown = (url: string) =>
  waitDrift(url, (v) => v.reference !== 'loading', 'the drift reference to be known')

/** The first window is the reference now: later rows are live. */
const referenceReady = (url: string) =>
  waitDrift(url, (v) => v.referenceReady, 'the first window to be the reference')

/** Every feature (4 columns and the label) was judged on a full live window. */
const judged = (url: string) =>
  waitDrift(url, (v) => v.features.length === 5, 'every drift feature to be judged')

async function waitEvent(url: string, event: string): Promise<any> {
  let entry: any
  await waitFor(async () => {
    ;[entry] = eventsOf(await historyOf(url, 'iris'), event)
    return entry !== undefined
  }, `${event} in the history`)
  return entry
}

describe('drift', () => {
  it('detects a shifted column against the first window, once per episode, and clears when it is back', async () => {
    const window = 500
    const t = await serve((dir) => withIris(dir, { threshold: 0.2, window, intervalSeconds: 0.2 }))
    expect(await referenceKnown(t.url)).toMatchObject({
      reference: 'first_window',
      referenceError: null,
      referenceRows: 0,
      referenceReady: false,
      liveRows: 0,
      detected: false,
      features: [],
    })

    await send(t.url, rows(window, 1))
    await referenceReady(t.url)
    await send(t.url, rows(window, 2))
    const calm = await judged(t.url)
    expect(calm).toMatchObject({ referenceRows: window, liveRows: window, detected: false })
    expect(calm.features.map((f: any) => [f.input, f.feature])).toEqual([
      ['features', '0'],
      ['features', '1'],
      ['features', '2'],
      ['features', '3'],
      ['label', 'frequency'],
    ])
    for (const f of calm.features) expect(f.psi).toBeLessThan(0.1)
    expect(eventsOf(await historyOf(t.url, 'iris'), 'drift_detected')).toEqual([])

    await send(t.url, rows(window, 3, { column: 2, by: 10 }))
    const detected = await waitEvent(t.url, 'drift_detected')
    expect(detected).toMatchObject({ model: 'iris', version: 2, threshold: 0.2 })
    const names = detected.features.map((f: any) => `${f.input}/${f.feature}`)
    expect(names).toContain('features/2')
    expect(names).not.toContain('features/0')
    expect(detected.features.find((f: any) => f.feature === '2').psi).toBeGreaterThan(1)
    expect(
      await metricValue(t.url, 'modelgate_drift_psi', {
        model: 'iris',
        input: 'features',
        feature: '2',
      }),
    ).toBeGreaterThan(1)
    expect((await driftOf(t.url)).detected).toBe(true)

    // Still drifted: no second event for the same episode.
    await send(t.url, rows(BATCH, 4, { column: 2, by: 10 }))
    const before = (await driftOf(t.url)).features
    await waitFor(
      async () => JSON.stringify((await driftOf(t.url)).features) !== JSON.stringify(before),
      'another judgement',
    )
    expect(eventsOf(await historyOf(t.url, 'iris'), 'drift_detected')).toHaveLength(1)

    await send(t.url, rows(window, 5))
    const cleared = await waitEvent(t.url, 'drift_cleared')
    expect(cleared).toMatchObject({ model: 'iris', version: 2 })
    for (const f of cleared.features) expect(f.psi).toBeLessThan(0.1)
    expect((await driftOf(t.url)).detected).toBe(false)
  })

  it('starts a new reference when another version becomes active, ending the episode', async () => {
    const window = 100
    const t = await serve((dir) => withIris(dir, { window, intervalSeconds: 0.2 }))
    await referenceKnown(t.url)
    await send(t.url, rows(window, 11))
    await referenceReady(t.url)
    await send(t.url, rows(window, 12, { column: 1, by: 10 }))
    expect((await waitEvent(t.url, 'drift_detected')).version).toBe(2)

    await dropVersion(t.modelsDir, 'iris', 3, await readFile(join(IRIS, '2', 'model.onnx')))
    const cleared = await waitEvent(t.url, 'drift_cleared')
    expect(cleared).toMatchObject({ version: 2, reason: 'version 3 is active' })
    expect(await referenceKnown(t.url)).toMatchObject({
      reference: 'first_window',
      referenceRows: 0,
      liveRows: 0,
      detected: false,
      features: [],
    })
    expect(
      await metricValue(t.url, 'modelgate_drift_psi', {
        model: 'iris',
        input: 'features',
        feature: '1',
      }),
    ).toBeUndefined()
  })

  it('measures against reference.json, and ignores requests for a version the client named', async () => {
    const window = 200
    const reference = JSON.stringify({ inputs: { features: rows(500, 6) } })
    const t = await serve((dir) =>
      withIris(dir, { window, intervalSeconds: 0.2 }, { 'reference.json': reference }),
    )
    // The inputs' reference is fixed; the predicted label's is still the first window to come.
    expect(await referenceKnown(t.url)).toMatchObject({
      reference: 'reference.json',
      referenceRows: 500,
      referenceReady: false,
      liveRows: 0,
    })
    // Named versions are not the model's traffic: not counted.
    const named = await postJson(`${t.url}/models/iris/versions/2/predict`, {
      inputs: { features: rows(BATCH, 7, { column: 0, by: 10 }) },
    })
    expect(named.status).toBe(200)
    expect((await driftOf(t.url)).liveRows).toBe(0)

    await send(t.url, rows(window, 8, { column: 0, by: 10 }))
    const detected = await waitEvent(t.url, 'drift_detected')
    expect(detected.features.map((f: any) => `${f.input}/${f.feature}`)).toEqual(['features/0'])
    expect((await driftOf(t.url)).liveRows).toBe(window)
  })

  it('says why a broken reference.json is not used, takes the first window instead, and serves on', async () => {
    const t = await serve((dir) =>
      withIris(
        dir,
        { window: 10, intervalSeconds: 0.2 },
        { 'reference.json': JSON.stringify({ inputs: { features: [[1, 2, 3]] } }) },
      ),
    )
    const view = await referenceKnown(t.url)
    expect(view.reference).toBe('first_window')
    expect(view.referenceError).toMatch(/^iris\/reference\.json: inputs: /)
    const logged = t.logs.find((r) => r.event === 'drift_reference_invalid')
    expect(logged).toMatchObject({ model: 'iris', version: 2, error: view.referenceError })
    await send(t.url, rows(10, 9))
    await referenceReady(t.url)
    await send(t.url, rows(10, 10))
    expect(await judged(t.url)).toMatchObject({ referenceRows: 10, liveRows: 10 })
  })
})
