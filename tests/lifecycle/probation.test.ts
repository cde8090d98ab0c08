import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  admin,
  eventsOf,
  getJson,
  historyOf,
  metricValue,
  modelDetail,
  postJson,
  versionView,
  waitActive,
  waitStatus,
} from '../support/api-client.js'
import { classifierModel, reshapeToRequestModel } from '../support/models.js'
import { serve, serveOver, tempModelsDir } from '../support/servers.js'
import { dropVersion, writeFiles } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'

/**
 * After the swap: prediction ids, feedback, live figures, and the probation that rolls a version
 * back by itself. Real server, real models: `classifierModel` answers label 0 with bias [1, 0, 0]
 * (right, for truth 0) and label 2 with bias [0, 0, 1] (wrong).
 */

const RIGHT = classifierModel([1, 0, 0])
const WRONG = classifierModel([0, 0, 1])
const X = { inputs: { x: [[0, 0, 0]] } }

/** model.json with `probation`, and version 1 of the model. */
async function firstVersion(
  dir: string,
  model: string,
  bytes: Uint8Array,
  probation: Record<string, unknown>,
): Promise<void> {
  await writeFiles(join(dir, model), { 'model.json': JSON.stringify({ probation }) })
  await dropVersion(dir, model, 1, bytes)
}

async function predictAs(url: string, model: string, id?: string) {
  return postJson(`${url}/models/${model}/predict`, X, id ? { 'x-prediction-id': id } : {})
}

/** `n` predictions, each followed by feedback that the truth is label 0. */
async function predictWithTruth(url: string, model: string, n: number, prefix: string) {
  for (let i = 0; i < n; i++) {
    const r = await predictAs(url, model, `${prefix}-${i}`)
    expect(r.status, JSON.stringify(r.body)).toBe(200)
  }
  const items = Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, label: 0 }))
  const f = await postJson(`${url}/models/${model}/feedback`, { items })
  expect(f.body).toEqual({ accepted: n, unknown: [], duplicates: 0, invalid: [] })
}

/** The history entry of an automatic rollback: written once state.json records it, after the swap. */
async function autoRollback(url: string, model: string, version: number): Promise<any> {
  let entry: any
  await waitFor(
    async () => {
      ;[entry] = eventsOf(await historyOf(url, model), 'auto_rolled_back', version)
      return entry !== undefined
    },
    `auto_rolled_back of version ${version} in the history`,
    10_000,
  )
  return entry
}

describe('prediction ids and feedback', () => {
  it('answers every prediction with an id, scores feedback per version, and shows the figures', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', RIGHT, { seconds: 300 }))
    const own = await predictAs(t.url, 'm', 'order-1')
    expect(own.status).toBe(200)
    expect(own.body.id).toBe('order-1')
    expect(own.headers.get('x-prediction-id')).toBe('order-1')
    const made = await predictAs(t.url, 'm')
    expect(made.body.id).toMatch(/^[A-Za-z0-9._:-]+$/)
    expect(made.headers.get('x-prediction-id')).toBe(made.body.id)
    expect((await predictAs(t.url, 'm')).body.id).not.toBe(made.body.id)

    const bad = await predictAs(t.url, 'm', 'has space')
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe('invalid_request')
    expect(bad.body.error.message).toContain('X-Prediction-Id')

    const v2 = await postJson(`${t.url}/v2/models/m/infer`, {
      id: 'v2-1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [0, 0, 0] }],
    })
    expect(v2.status).toBe(200)
    expect(v2.body.id).toBe('v2-1')
    expect(v2.headers.get('x-prediction-id')).toBe('v2-1')

    const one = await postJson(`${t.url}/models/m/feedback`, { id: 'order-1', label: 0 })
    expect(one.body).toEqual({ accepted: 1, unknown: [], duplicates: 0, invalid: [] })
    const batch = await postJson(`${t.url}/models/m/feedback`, {
      items: [
        { id: 'order-1', label: 1 },
        { id: 'nope', label: 0 },
        { id: made.body.id, label: 1 },
        { id: 'v2-1', label: [0, 0] },
      ],
    })
    expect(batch.status).toBe(200)
    expect(batch.body).toEqual({
      accepted: 1,
      unknown: ['nope'],
      duplicates: 1,
      invalid: [{ id: 'v2-1', reason: '2 labels for a prediction of 1 rows' }],
    })
    const mixed = await postJson(`${t.url}/models/m/feedback`, { id: 'v2-1', label: 0, value: 1 })
    expect(mixed.status).toBe(400)

    const live = versionView(await modelDetail(t.url, 'm'), 1).live
    expect(live).toMatchObject({ requests: 4, errors: 0, errorRate: 0, feedback: 2, accuracy: 0.5 })
    expect(live.p99Ms).toBeGreaterThan(0)
    expect(await metricValue(t.url, 'modelgate_live_accuracy', { model: 'm', version: '1' })).toBe(
      0.5,
    )
    const fed = (result: string, version = '1') =>
      metricValue(t.url, 'modelgate_feedback_total', { model: 'm', version, result })
    expect([await fed('right'), await fed('wrong'), await fed('duplicate')]).toEqual([1, 1, 1])
    expect([await fed('invalid'), await fed('unknown', '')]).toEqual([1, 1])

    // Regression feedback is scored against the first numeric output (scores[0] = 1 here).
    const value = await postJson(`${t.url}/models/m/feedback`, { id: 'v2-1', value: 0.5 })
    expect(value.body.accepted).toBe(1)
    expect(versionView(await modelDetail(t.url, 'm'), 1).live.mae).toBe(0.5)
    expect((await postJson(`${t.url}/models/nope/feedback`, { id: 'a', label: 1 })).status).toBe(
      404,
    )
  })
  it("keeps model.json's feedback.window for a version served again after a restart", async () => {
    const dir = await tempModelsDir(async (d) => {
      await writeFiles(join(d, 'm'), { 'model.json': JSON.stringify({ feedback: { window: 2 } }) })
      await dropVersion(d, 'm', 1, RIGHT)
    })
    await (await serveOver(dir)).close()
    // Restored, not promoted: its window is made by its first request.
    const t = await serveOver(dir)
    for (const id of ['a', 'b', 'c']) expect((await predictAs(t.url, 'm', id)).status).toBe(200)
    const items = [
      { id: 'a', label: 0 },
      { id: 'b', label: 0 },
      { id: 'c', label: 1 },
    ]
    expect((await postJson(`${t.url}/models/m/feedback`, { items })).body.accepted).toBe(3)
    // The last two items only: one right, one wrong.
    const live = versionView(await modelDetail(t.url, 'm'), 1).live
    expect(live).toMatchObject({ feedback: 2, accuracy: 0.5 })
  })
})

describe('probation', () => {
  it('rolls a version whose accuracy drops back by itself, and says which rule and figures', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', RIGHT, { minFeedback: 5, seconds: 300 }))
    await predictWithTruth(t.url, 'm', 5, 'v1')
    await dropVersion(t.modelsDir, 'm', 2, WRONG)
    await waitActive(t.url, 'm', 2)
    const running = (await modelDetail(t.url, 'm')).probation
    expect(running).toMatchObject({ version: 2, previous: 1 })
    expect(running.rules.find((r: any) => r.rule === 'accuracy')).toMatchObject({
      limit: 0.95,
      sample: 0,
      needed: 5,
      status: 'waiting',
    })

    await predictWithTruth(t.url, 'm', 5, 'v2')
    await waitActive(t.url, 'm', 1)
    await waitStatus(t.url, 'm', 2, 'rolled_back')
    const detail = await modelDetail(t.url, 'm')
    expect(detail.probation).toBeNull()
    const entry = await autoRollback(t.url, 'm', 2)
    expect(entry).toMatchObject({
      trigger: 'auto_rollback:accuracy',
      to: 1,
      warm: true,
      rule: 'accuracy',
      observed: 0,
      limit: 0.95,
      sample: 5,
    })
    expect(
      await metricValue(t.url, 'modelgate_rollbacks_total', {
        model: 'm',
        trigger: 'auto',
        warm: 'true',
      }),
    ).toBe(1)
    expect((await predictAs(t.url, 'm')).body.version).toBe(1)
  })

  it('rolls back on runtime errors, judged once the sample is large enough', async () => {
    const t = await serve((dir) =>
      firstVersion(dir, 'r', reshapeToRequestModel(), { minRequests: 5, seconds: 300 }),
    )
    await dropVersion(t.modelsDir, 'r', 2, reshapeToRequestModel())
    await waitActive(t.url, 'r', 2)
    // x has 4 values; a shape of 3 fails inside onnxruntime: a 500, the version's fault.
    const failing = { inputs: { x: [1, 2, 3, 4], shape: [3] } }
    for (let i = 0; i < 4; i++)
      expect((await postJson(`${t.url}/models/r/predict`, failing)).status).toBe(500)
    const waiting = (await modelDetail(t.url, 'r')).probation.rules[0]
    expect(waiting).toMatchObject({ rule: 'error_rate', sample: 4, status: 'waiting' })
    expect((await postJson(`${t.url}/models/r/predict`, failing)).status).toBe(500)
    await waitActive(t.url, 'r', 1)
    const entry = await autoRollback(t.url, 'r', 2)
    expect(entry).toMatchObject({ rule: 'error_rate', observed: 1, limit: 0.01, sample: 5 })
  })

  it('passes at the end of its window, saying which rules never had their sample', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', RIGHT, { seconds: 1 }))
    await dropVersion(t.modelsDir, 'm', 2, RIGHT.slice())
    await waitActive(t.url, 'm', 2)
    await waitFor(
      async () => eventsOf(await historyOf(t.url, 'm'), 'probation_passed', 2).length === 1,
      'probation_passed for version 2',
      10_000,
    )
    const [entry] = eventsOf(await historyOf(t.url, 'm'), 'probation_passed', 2)
    expect(entry.insufficient).toBe(true)
    expect(entry.rules.map((r: any) => r.rule)).toEqual(['error_rate', 'latency', 'accuracy'])
    const detail = await modelDetail(t.url, 'm')
    expect(detail.active).toBe(2)
    expect(detail.probation).toBeNull()
    expect(
      await metricValue(t.url, 'modelgate_probations_total', { model: 'm', result: 'passed' }),
    ).toBe(1)
  })

  it('survives a restart: the same probation, the same end', async () => {
    const dir = await tempModelsDir((d) => firstVersion(d, 'm', RIGHT, { seconds: 600 }))
    const t = await serveOver(dir)
    await dropVersion(t.modelsDir, 'm', 2, WRONG)
    await waitActive(t.url, 'm', 2)
    const before = (await modelDetail(t.url, 'm')).probation
    await t.close()
    const again = await serveOver(dir)
    const after = (await modelDetail(again.url, 'm')).probation
    expect(after).toMatchObject({
      version: 2,
      previous: 1,
      startedAt: before.startedAt,
      endsAt: before.endsAt,
    })
  })

  it('follows admin promotions too, unless skipProbation; a rollback ends it', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', RIGHT, { seconds: 600 }))
    await dropVersion(t.modelsDir, 'm', 2, WRONG)
    await waitActive(t.url, 'm', 2)
    expect((await admin(t.url, '/models/m/rollback')).status).toBe(200)
    expect((await modelDetail(t.url, 'm')).probation).toBeNull()

    const skipped = await admin(t.url, '/models/m/promote', { version: 2, skipProbation: true })
    expect(skipped.status, JSON.stringify(skipped.body)).toBe(200)
    expect((await modelDetail(t.url, 'm')).probation).toBeNull()

    expect((await admin(t.url, '/models/m/promote', { version: 1 })).status).toBe(200)
    const detail = await modelDetail(t.url, 'm')
    expect(detail.probation).toMatchObject({ version: 1, previous: 2 })
    expect((await getJson(`${t.url}/models/m`)).body.active).toBe(1)
  })
})
