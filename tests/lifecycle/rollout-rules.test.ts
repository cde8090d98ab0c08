import { describe, expect, it } from 'vitest'
import { canaryRules } from '../../src/lifecycle/promotion/rollout-rules.js'
import type { ModelView, Rollout } from '../../src/lifecycle/versions/version-state.js'
import { LiveFigures } from '../../src/metrics/live-figures.js'
import { DEFAULT_MODEL_CONFIG } from '../../src/repository/model-config.js'

/** A model whose version 2 is a canary against version 1, its step begun at the windows' marks. */
function canaryOf(live: LiveFigures): ModelView {
  const marks = {
    candidate: live.window('m', 2).mark(),
    active: live.window('m', 1).mark(),
  }
  const rollout = {
    version: 2,
    mode: 'canary',
    settings: { mode: 'canary', steps: [10], stepSeconds: 60 },
    against: 1,
    step: 0,
    percent: 10,
    marks,
  } as unknown as Rollout
  return { name: 'm', config: DEFAULT_MODEL_CONFIG, rollout } as unknown as ModelView
}

/** `n` requests of 1 ms, the ones at `slow` indexes 3 ms. */
function serve(live: LiveFigures, version: number, n: number, slow: ReadonlySet<number>) {
  const w = live.window('m', version)
  for (let i = 0; i < n; i++) w.recordRequest(true, slow.has(i) ? 3 : 1)
}

describe('canaryRules', () => {
  it("holds the candidate's p99 to the active version's over as many of its requests, not over all of them", () => {
    const live = new LiveFigures()
    serve(live, 1, 50, new Set()) // before the step: not counted
    serve(live, 2, 5, new Set())
    const model = canaryOf(live)
    // The step: the candidate serves 100 requests, 2 of them slow; the active version 900, of which
    // 8 slow, 2 of those in its last 100. Over all 900 its p99 is 1 ms (nearest rank 891 of 900),
    // and the candidate's 3 ms would be three times that: a breach found by sample size alone.
    serve(live, 2, 100, new Set([10, 60]))
    serve(live, 1, 900, new Set([100, 200, 300, 400, 500, 600, 850, 890]))
    const latency = canaryRules(model, live)!.find((r) => r.rule === 'latency')!
    expect(latency).toMatchObject({ observed: 3, limit: 6, sample: 100, status: 'ok' })
  })

  it('still finds a candidate that is slower than the active version over the same requests', () => {
    const live = new LiveFigures()
    const model = canaryOf(live)
    serve(live, 2, 100, new Set(Array.from({ length: 5 }, (_, i) => i * 20)))
    serve(live, 1, 900, new Set())
    const latency = canaryRules(model, live)!.find((r) => r.rule === 'latency')!
    expect(latency).toMatchObject({ observed: 3, limit: 2, status: 'breached' })
  })
})
