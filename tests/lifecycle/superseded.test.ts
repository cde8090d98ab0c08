import { describe, expect, it } from 'vitest'
import {
  historyOf,
  modelDetail,
  predict,
  versionView,
  waitActive,
  waitStatus,
} from '../support/api-client.js'
import { addConstModel, spinModel, writeVersion } from '../support/models.js'
import { serve } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'

/**
 * A candidate whose gate is running when a newer version lands is abandoned for it (the newest
 * wins): it is recorded as superseded, never served, and the newer version is gated and serves.
 */

/** `n` smoke cases of one row each: with spinModel, a gate of `n` runs of its trip count each. */
function spinningSmoke(n: number): string {
  return JSON.stringify({
    cases: Array.from({ length: n }, (_, i) => ({
      name: `case ${i}`,
      inputs: { x: [[1, 2, 3, 4]] },
    })),
  })
}

describe('a candidate superseded while its gate runs', () => {
  it('is abandoned mid-gate: history and metrics say superseded, it never serves, and the newer version does', async () => {
    const t = await serve(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
    })
    // Requests throughout, each answered by the version that served it.
    const answered: (number | null)[] = []
    let asking = true
    const asker = (async () => {
      while (asking) answered.push((await predict(t.url, 'adder')).version)
    })()
    try {
      // Ten thousand cases of 1e5 loop iterations each: a gate of 1e9 iterations, hours here, and
      // far beyond this test on any machine. Each case is short, so the gate can stop between two.
      await dropVersion(t.modelsDir, 'adder', 2, spinModel(2, 1e5), {
        'smoke.json': spinningSmoke(10_000),
      })
      await waitStatus(t.url, 'adder', 2, 'validating')
      await dropVersion(t.modelsDir, 'adder', 3, addConstModel(3))
      await waitActive(t.url, 'adder', 3)
    } finally {
      asking = false
      await asker
    }

    expect(
      answered.filter((v) => v !== 1 && v !== 3),
      'answers by a version other than 1 and 3',
    ).toEqual([])
    expect((await predict(t.url, 'adder')).constant).toBe(3)
    expect(versionView(await modelDetail(t.url, 'adder'), 2)).toMatchObject({
      status: 'discovered',
      loaded: false,
      note: 'superseded by a newer version',
    })
    const events = (await historyOf(t.url, 'adder')).map((e) => `${e.event} ${e.version}`)
    // Abandoned before the newer version was gated and promoted; never rejected, never promoted.
    expect(events).toEqual(['promoted 1', 'superseded 2', 'promoted 3'])
    const metrics = await (await fetch(`${t.url}/metrics`)).text()
    expect(metrics).toContain('modelgate_promotions_total{model="adder",result="superseded"} 1')
    expect(metrics).toContain('modelgate_promotions_total{model="adder",result="promoted"} 2')
    expect(metrics).not.toMatch(/modelgate_promotions_total\{model="adder",result="rejected"\}/)
  })
})
