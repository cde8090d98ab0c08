import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  admin,
  eventsOf,
  historyOf,
  metricValue,
  modelDetail,
  postJson,
  versionView,
  waitActive,
  waitStatus,
} from '../support/api-client.js'
import { classifierModel } from '../support/models.js'
import { serve, serveOver, tempModelsDir } from '../support/servers.js'
import { dropVersion, writeFiles } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'

/**
 * Rollouts: a version that passed its gate is mirrored (shadow) or given a share of the requests
 * (canary) before it serves everyone. Real server, real models: `classifierModel` answers label 0
 * with bias [1, 0, 0] and label 2 with bias [0, 0, 1]; the first two agree with each other only
 * when their biases pick the same label.
 */

const RIGHT = classifierModel([1, 0, 0])
/** Another file with the same answers (label 0): agrees with RIGHT. */
const ALSO_RIGHT = classifierModel([1, 0.001, 0])
const WRONG = classifierModel([0, 0, 1])
const X = { inputs: { x: [[0, 0, 0]] } }

async function firstVersion(dir: string, model: string, config: Record<string, unknown>) {
  await writeFiles(join(dir, model), { 'model.json': JSON.stringify(config) })
  await dropVersion(dir, model, 1, RIGHT)
}

function predict(url: string, model: string, headers: Record<string, string> = {}) {
  return postJson(`${url}/models/${model}/predict`, X, headers)
}

/** Sends requests (each must succeed) until `done` holds. */
async function trafficUntil(
  url: string,
  model: string,
  done: () => Promise<boolean>,
  what: string,
): Promise<number[]> {
  const answeredBy: number[] = []
  await waitFor(
    async () => {
      for (let i = 0; i < 10; i++) {
        const r = await predict(url, model)
        expect(r.status, JSON.stringify(r.body)).toBe(200)
        answeredBy.push(r.body.version)
      }
      return done()
    },
    what,
    20_000,
  )
  return answeredBy
}

const entryOf = async (url: string, model: string, event: string, version: number) => {
  let entry: any
  await waitFor(
    async () => {
      ;[entry] = eventsOf(await historyOf(url, model), event, version)
      return entry !== undefined
    },
    `${event} of version ${version} in the history`,
    10_000,
  )
  return entry
}

describe('shadow rollout', () => {
  const shadow = (min: number) => ({
    rollout: { mode: 'shadow', minRequests: 20, agreement: { min, output: 'label' } },
    probation: { seconds: 600 },
  })

  it('mirrors requests to a candidate that answers no one, and promotes it when it agrees', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', shadow(0.9)))
    await dropVersion(t.modelsDir, 'm', 2, ALSO_RIGHT)
    await waitStatus(t.url, 'm', 2, 'shadow')
    const detail = await modelDetail(t.url, 'm')
    expect(detail.active).toBe(1)
    expect(detail.rollout).toMatchObject({ version: 2, mode: 'shadow', against: 1, step: null })
    expect(versionView(detail, 2).loaded).toBe(true)

    const answeredBy = await trafficUntil(
      t.url,
      'm',
      async () => (await modelDetail(t.url, 'm')).active === 2,
      'version 2 promoted after its mirrored requests',
    )
    // Until the promotion, only the active version answered.
    expect(answeredBy.slice(0, answeredBy.indexOf(2))).not.toContain(2)
    const promoted = await entryOf(t.url, 'm', 'promoted', 2)
    expect(promoted).toMatchObject({ trigger: 'rollout', mode: 'shadow', from: 1 })
    expect(promoted.shadow).toMatchObject({ agreement: 1, min: 0.9, needed: 20 })
    expect(promoted.shadow.mirrored).toBeGreaterThanOrEqual(20)
    expect(promoted.shadow.meanAbsDiff).toBeCloseTo(0.001 / 3, 6)
    const after = await modelDetail(t.url, 'm')
    expect(after.rollout).toBeNull()
    expect(after.probation).toMatchObject({ version: 2, previous: 1 })
    expect(eventsOf(await historyOf(t.url, 'm'), 'rollout_started', 2)).toHaveLength(1)
    const shadowed = (result: string) =>
      metricValue(t.url, 'modelgate_shadow_requests_total', { model: 'm', version: '2', result })
    // A copy still running when it was judged counts in the metric, not in the verdict's figures.
    expect(await shadowed('agreed')).toBeGreaterThanOrEqual(promoted.shadow.agreed)
    expect(await shadowed('agreed')).toBeLessThanOrEqual(promoted.shadow.agreed + 1)
    expect(
      await metricValue(t.url, 'modelgate_rollouts_total', {
        model: 'm',
        mode: 'shadow',
        result: 'promoted',
      }),
    ).toBe(1)
  })

  it('rejects a candidate that disagrees, with the figures; clients never see it', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', shadow(0.9)))
    await dropVersion(t.modelsDir, 'm', 2, WRONG)
    await waitStatus(t.url, 'm', 2, 'shadow')
    const answeredBy = await trafficUntil(
      t.url,
      'm',
      async () => versionView(await modelDetail(t.url, 'm'), 2).status === 'rejected',
      'version 2 rejected after its mirrored requests',
    )
    expect(new Set(answeredBy)).toEqual(new Set([1]))
    const v2 = versionView(await modelDetail(t.url, 'm'), 2)
    expect(v2).toMatchObject({ stage: 'shadow', reason: 'shadow_disagreement', loaded: false })
    expect(v2.message).toMatch(/^0\/\d+ mirrored requests agreed with version 1 \(0; min 0\.9\)$/)
    const rejected = await entryOf(t.url, 'm', 'rejected', 2)
    expect(rejected).toMatchObject({ reason: 'shadow_disagreement', trigger: 'rollout' })
    expect(rejected.shadow).toMatchObject({ agreement: 0, agreed: 0 })
    expect(
      await metricValue(t.url, 'modelgate_rejections_total', { model: 'm', stage: 'shadow' }),
    ).toBe(1)
    expect((await modelDetail(t.url, 'm')).rollout).toBeNull()
  })

  it('starts the rollout again after a restart', async () => {
    const dir = await tempModelsDir((d) =>
      firstVersion(d, 'm', { rollout: { mode: 'shadow', minRequests: 1000 } }),
    )
    const t = await serveOver(dir)
    await dropVersion(t.modelsDir, 'm', 2, ALSO_RIGHT)
    await waitStatus(t.url, 'm', 2, 'shadow')
    await t.close()
    const again = await serveOver(dir)
    await waitStatus(again.url, 'm', 2, 'shadow')
    const detail = await modelDetail(again.url, 'm')
    expect(detail).toMatchObject({ active: 1, rollout: { version: 2, mode: 'shadow' } })
    expect((await predict(again.url, 'm')).body.version).toBe(1)
  })
})

describe('canary rollout', () => {
  // A p99 of sub-millisecond requests on a machine busy with other tests is noise even over equal
  // samples (1 run in 6 still breached): the latency rule is left out here, and judged in
  // rollout-rules.test.ts on figures that are not.
  const canary = (o: Record<string, unknown>) => ({
    rollout: { mode: 'canary', stickyHeader: 'x-user-id', ...o },
    probation: { seconds: 600, minFeedback: 5, latencyRatio: 1000 },
  })

  it('answers its share, the same user always from the same version, until aborted', async () => {
    const t = await serve((dir) =>
      firstVersion(dir, 'm', canary({ steps: [30], stepSeconds: 600 })),
    )
    await dropVersion(t.modelsDir, 'm', 2, ALSO_RIGHT)
    await waitStatus(t.url, 'm', 2, 'canary')
    expect(versionView(await modelDetail(t.url, 'm'), 2).status).toBe('canary')
    expect((await modelDetail(t.url, 'm')).rollout).toMatchObject({
      version: 2,
      mode: 'canary',
      step: 0,
      percent: 30,
      steps: [30],
    })

    // Without the header, at random: 400 draws at 30% land within 6 standard deviations of 120.
    let candidate = 0
    for (let i = 0; i < 400; i++) {
      const r = await predict(t.url, 'm')
      expect(r.headers.get('x-model-version')).toBe(String(r.body.version))
      if (r.body.version === 2) candidate++
    }
    expect(candidate).toBeGreaterThan(120 - 6 * Math.sqrt(400 * 0.3 * 0.7))
    expect(candidate).toBeLessThan(120 + 6 * Math.sqrt(400 * 0.3 * 0.7))

    // With it, each user sticks to one version, and about 30% of users get the candidate.
    const users = Array.from({ length: 200 }, (_, i) => `user-${i}`)
    const sides = new Map<string, number>()
    for (const user of users) {
      const seen = new Set<number>()
      for (let k = 0; k < 3; k++)
        seen.add((await predict(t.url, 'm', { 'x-user-id': user })).body.version)
      expect(seen.size, user).toBe(1)
      sides.set(user, [...seen][0]!)
    }
    const sticky = [...sides.values()].filter((v) => v === 2).length
    expect(sticky).toBeGreaterThan(60 - 6 * Math.sqrt(200 * 0.3 * 0.7))
    expect(sticky).toBeLessThan(60 + 6 * Math.sqrt(200 * 0.3 * 0.7))

    expect(await metricValue(t.url, 'modelgate_canary_percent', { model: 'm' })).toBe(30)
    const aborted = await admin(t.url, '/models/m/rollout/abort', { reason: 'enough' })
    expect(aborted.status, JSON.stringify(aborted.body)).toBe(200)
    expect(aborted.body).toEqual({ model: 'm', version: 2, mode: 'canary', active: 1 })
    for (const user of users.slice(0, 50))
      expect((await predict(t.url, 'm', { 'x-user-id': user })).body.version).toBe(1)
    const v2 = versionView(await modelDetail(t.url, 'm'), 2)
    expect(v2).toMatchObject({ status: 'rolled_back', loaded: false })
    expect(v2.rolledBack.reason).toBe('rollout_aborted')
    expect(await entryOf(t.url, 'm', 'rollout_aborted', 2)).toMatchObject({
      trigger: 'admin',
      message: 'enough',
      mode: 'canary',
    })
    expect(await metricValue(t.url, 'modelgate_canary_percent', { model: 'm' })).toBe(0)
    expect(
      await metricValue(t.url, 'modelgate_rollouts_total', {
        model: 'm',
        mode: 'canary',
        result: 'aborted',
      }),
    ).toBe(1)
    const again = await admin(t.url, '/models/m/rollout/abort')
    expect(again.status).toBe(409)
    expect(again.body.error.message).toBe("model 'm' has no rollout in progress")
  })

  it('steps up and promotes a candidate that holds up', async () => {
    const t = await serve((dir) =>
      firstVersion(dir, 'm', canary({ steps: [20, 50], stepSeconds: 0.5 })),
    )
    await dropVersion(t.modelsDir, 'm', 2, ALSO_RIGHT)
    await trafficUntil(
      t.url,
      'm',
      async () => (await modelDetail(t.url, 'm')).active === 2,
      'version 2 promoted after its canary steps',
    )
    const history = await historyOf(t.url, 'm')
    expect(eventsOf(history, 'rollout_step', 2)).toMatchObject([{ step: 1, percent: 50 }])
    expect(eventsOf(history, 'promoted', 2)).toMatchObject([{ trigger: 'rollout', mode: 'canary' }])
    expect((await modelDetail(t.url, 'm')).probation).toMatchObject({ version: 2, previous: 1 })
  })

  it('sends everyone back to the active version when the candidate breaks a rule', async () => {
    const t = await serve((dir) =>
      firstVersion(dir, 'm', canary({ steps: [50], stepSeconds: 600 })),
    )
    await dropVersion(t.modelsDir, 'm', 2, WRONG)
    await waitStatus(t.url, 'm', 2, 'canary')
    // Every prediction's truth is label 0: version 1 is right, version 2 wrong.
    let n = 0
    await waitFor(
      async () => {
        const ids = Array.from({ length: 10 }, () => `p-${n++}`)
        for (const id of ids)
          expect((await predict(t.url, 'm', { 'x-prediction-id': id })).status).toBe(200)
        const items = ids.map((id) => ({ id, label: 0 }))
        await postJson(`${t.url}/models/m/feedback`, { items })
        return versionView(await modelDetail(t.url, 'm'), 2).status === 'rolled_back'
      },
      'version 2 rolled back by its canary',
      20_000,
    )
    const failed = await entryOf(t.url, 'm', 'rollout_failed', 2)
    expect(failed).toMatchObject({
      reason: 'canary_failed:accuracy',
      rule: 'accuracy',
      observed: 0,
      limit: 0.95,
      step: 0,
      percent: 50,
    })
    expect(failed.sample).toBeGreaterThanOrEqual(5)
    expect(versionView(await modelDetail(t.url, 'm'), 2).rolledBack.reason).toBe(
      'canary_failed:accuracy',
    )
    for (let i = 0; i < 20; i++) expect((await predict(t.url, 'm')).body.version).toBe(1)
  })

  it('lets an operator promote the candidate at once', async () => {
    const t = await serve((dir) =>
      firstVersion(dir, 'm', canary({ steps: [10], stepSeconds: 600 })),
    )
    await dropVersion(t.modelsDir, 'm', 2, ALSO_RIGHT)
    await waitStatus(t.url, 'm', 2, 'canary')
    const promoted = await admin(t.url, '/models/m/promote', { version: 2 })
    expect(promoted.status, JSON.stringify(promoted.body)).toBe(200)
    expect(promoted.body).toMatchObject({ from: 1, to: 2, warm: true })
    await waitActive(t.url, 'm', 2)
    expect((await modelDetail(t.url, 'm')).rollout).toBeNull()
    for (let i = 0; i < 10; i++) expect((await predict(t.url, 'm')).body.version).toBe(2)
  })
})

describe('a rollout and the other ways versions change', () => {
  const shadowForever = { rollout: { mode: 'shadow', minRequests: 1_000_000 } }

  it('gives way to a newer candidate, which is rolled out instead', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', shadowForever))
    await dropVersion(t.modelsDir, 'm', 2, ALSO_RIGHT)
    await waitStatus(t.url, 'm', 2, 'shadow')
    await dropVersion(t.modelsDir, 'm', 3, WRONG)
    await waitStatus(t.url, 'm', 3, 'shadow')
    const detail = await modelDetail(t.url, 'm')
    expect(detail).toMatchObject({ active: 1, rollout: { version: 3, against: 1 } })
    expect(versionView(detail, 2)).toMatchObject({ status: 'unloaded', loaded: false })
    expect(await entryOf(t.url, 'm', 'rollout_aborted', 2)).toMatchObject({
      reason: 'version 3 is rolled out instead',
    })
    expect(
      await metricValue(t.url, 'modelgate_rollouts_total', {
        model: 'm',
        mode: 'shadow',
        result: 'cancelled',
      }),
    ).toBe(1)
  })

  it('ends when an operator rolls the active version back', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', { probation: { enabled: false } }))
    await dropVersion(t.modelsDir, 'm', 2, ALSO_RIGHT)
    await waitActive(t.url, 'm', 2)
    await writeFiles(join(t.modelsDir, 'm'), {
      'model.json': JSON.stringify({
        probation: { enabled: false },
        rollout: { mode: 'canary', steps: [50], stepSeconds: 600 },
      }),
    })
    await dropVersion(t.modelsDir, 'm', 3, WRONG)
    await waitStatus(t.url, 'm', 3, 'canary')
    expect((await admin(t.url, '/models/m/rollback')).status).toBe(200)
    const detail = await modelDetail(t.url, 'm')
    expect(detail).toMatchObject({ active: 1, rollout: null })
    expect(versionView(detail, 3)).toMatchObject({ status: 'unloaded', loaded: false })
    for (let i = 0; i < 20; i++) expect((await predict(t.url, 'm')).body.version).toBe(1)
    expect(await entryOf(t.url, 'm', 'rollout_aborted', 3)).toMatchObject({
      reason: 'version 1 became active',
    })
  })

  it('ends when the model is unloaded, and nothing of it stays loaded', async () => {
    const t = await serve((dir) => firstVersion(dir, 'm', shadowForever))
    await dropVersion(t.modelsDir, 'm', 2, ALSO_RIGHT)
    await waitStatus(t.url, 'm', 2, 'shadow')
    const unloaded = await admin(t.url, '/v2/repository/models/m/unload', {})
    expect(unloaded.status, JSON.stringify(unloaded.body)).toBe(200)
    const detail = await modelDetail(t.url, 'm')
    expect(detail.rollout).toBeNull()
    expect(detail.versions.filter((v: any) => v.loaded)).toEqual([])
    expect(await metricValue(t.url, 'modelgate_loaded_versions', { model: 'm' })).toBe(0)
  })
})
