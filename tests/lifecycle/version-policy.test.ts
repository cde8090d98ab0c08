import { describe, expect, it } from 'vitest'
import type { LoadedVersion } from '../../src/lifecycle/versions/loaded-version.js'
import { newVersionRecord } from '../../src/lifecycle/versions/transitions.js'
import type { ModelView, Verdict, VersionView } from '../../src/lifecycle/versions/version-state.js'
import { DEFAULT_MODEL_CONFIG } from '../../src/repository/model-config.js'
import {
  candidateOrder,
  isSettled,
  previousActivation,
  withActivation,
  withoutActivation,
} from '../../src/lifecycle/versions/version-policy.js'

/** The pure decisions over a model's versions, on records built by hand. */

const sha = (n: number) => n.toString(16).padStart(64, '0')

function record(
  version: number,
  o: { onDisk?: boolean; verdict?: Verdict['kind']; sha256?: string; rolledBack?: boolean } = {},
): VersionView {
  const s = o.sha256 ?? sha(version)
  return {
    ...newVersionRecord({
      model: 'm',
      version,
      kind: 'folder',
      file: `/models/m/${version}/model.onnx`,
      dir: `/models/m/${version}`,
    }),
    onDisk: o.onDisk ?? true,
    verdict: o.verdict && { kind: o.verdict, sha256: s, at: '2024-01-01T00:00:00.000Z' },
    rolledBack: o.rolledBack
      ? { sha256: s, reason: 'bad', at: '2024-01-01T00:00:00.000Z' }
      : undefined,
  }
}

/** Only what the policy reads of a loaded version. */
function loaded(version: number): LoadedVersion {
  return { version, sha256: sha(version) } as unknown as LoadedVersion
}

/** A model's view as the policy reads it; `activations` and the loaded versions can be changed. */
type TestModel = { -readonly [K in keyof ModelView]: ModelView[K] }

function model(
  records: VersionView[],
  o: { active?: number; retained?: number[]; activations?: number[] } = {},
): TestModel {
  return {
    name: 'm',
    dir: '/models/m',
    config: DEFAULT_MODEL_CONFIG,
    configError: undefined,
    versions: new Map(records.map((r) => [r.version, r])),
    active: o.active === undefined ? undefined : loaded(o.active),
    retained: (o.retained ?? []).map(loaded),
    activations: o.activations ?? [],
    unloaded: false,
    refused: [],
    probation: undefined,
    rollout: undefined,
    route() {
      return this.active
    },
  }
}

const versions = (rs: VersionView[]) => rs.map((r) => r.version)

describe('candidateOrder', () => {
  it('looks at every version on disk, newest first, when nothing serves', () => {
    expect(versions(candidateOrder(model([record(1), record(3), record(2)])))).toEqual([3, 2, 1])
  })

  it('rolls forward only: the active version and newer ones', () => {
    const m = model([record(1), record(2), record(3), record(4)], { active: 2 })
    expect(versions(candidateOrder(m))).toEqual([4, 3, 2])
  })

  it('leaves out versions whose file is gone', () => {
    const m = model([record(1), record(2, { onDisk: false }), record(3)], { active: 1 })
    expect(versions(candidateOrder(m))).toEqual([3, 1])
  })

  it('is empty for a model with no versions', () => {
    expect(candidateOrder(model([]))).toEqual([])
  })
})

describe('isSettled', () => {
  it('is settled for bytes that were rejected', () => {
    expect(isSettled(record(2, { verdict: 'rejected' }), sha(2))).toBe(true)
  })

  it('is not settled once the bytes change: a changed file is a new candidate', () => {
    expect(isSettled(record(2, { verdict: 'rejected' }), sha(99))).toBe(false)
  })

  it('is settled for bytes that were rolled back, whatever their verdict', () => {
    expect(isSettled(record(2, { verdict: 'passed', rolledBack: true }), sha(2))).toBe(true)
    expect(isSettled(record(2, { verdict: 'passed', rolledBack: true }), sha(99))).toBe(false)
  })

  it('is not settled for passed or undecided bytes', () => {
    expect(isSettled(record(2, { verdict: 'passed' }), sha(2))).toBe(false)
    expect(isSettled(record(2), sha(2))).toBe(false)
  })
})

describe('previousActivation', () => {
  it('is the version active before the current one, when it is retained', () => {
    const m = model(
      [
        record(1, { verdict: 'passed' }),
        record(2, { verdict: 'passed' }),
        record(3, { verdict: 'passed' }),
      ],
      {
        active: 3,
        retained: [2, 1],
        activations: [1, 2, 3],
      },
    )
    expect(previousActivation(m)).toBe(2)
  })

  it('is an unloaded earlier activation that passed and is still on disk', () => {
    const m = model([record(1, { verdict: 'passed' }), record(2, { verdict: 'passed' })], {
      active: 2,
      activations: [1, 2],
    })
    expect(previousActivation(m)).toBe(1)
  })

  it('skips earlier activations that cannot serve: file gone, rolled back, rejected since', () => {
    const m = model(
      [
        record(1, { verdict: 'passed' }),
        record(2, { verdict: 'passed', rolledBack: true }),
        record(3, { verdict: 'passed', onDisk: false }),
        record(4, { verdict: 'rejected' }),
        record(5, { verdict: 'passed' }),
      ],
      { active: 5, activations: [1, 2, 3, 4, 5] },
    )
    expect(previousActivation(m)).toBe(1)
  })

  it('takes a retained version even if its file is gone: it is still loaded', () => {
    const m = model(
      [record(1, { verdict: 'passed', onDisk: false }), record(2, { verdict: 'passed' })],
      {
        active: 2,
        retained: [1],
        activations: [1, 2],
      },
    )
    expect(previousActivation(m)).toBe(1)
  })

  it('is undefined when there is nothing to go back to', () => {
    expect(
      previousActivation(
        model([record(1, { verdict: 'passed' })], { active: 1, activations: [1] }),
      ),
    ).toBeUndefined()
    expect(previousActivation(model([], {}))).toBeUndefined()
  })

  it('follows the order of activations, not version numbers', () => {
    // 3 was promoted, then 1 explicitly: going back means 3.
    const m = model(
      [
        record(1, { verdict: 'passed' }),
        record(2, { verdict: 'passed' }),
        record(3, { verdict: 'passed' }),
      ],
      {
        active: 1,
        activations: [2, 3, 1],
      },
    )
    expect(previousActivation(m)).toBe(3)
  })
})

describe('withActivation / withoutActivation', () => {
  it('records each version once, the most recent last', () => {
    const m = model([], { activations: [1, 2, 3] })
    m.activations = withActivation(m.activations, 2)
    expect(m.activations).toEqual([1, 3, 2])
    m.activations = withActivation(m.activations, 4)
    expect(m.activations).toEqual([1, 3, 2, 4])
  })

  it('keeps a bounded history', () => {
    const m = model([])
    for (let v = 1; v <= 100; v++) m.activations = withActivation(m.activations, v)
    expect(m.activations).toHaveLength(64)
    expect(m.activations.at(-1)).toBe(100)
    expect(m.activations[0]).toBe(37)
  })

  it('drops a rolled-back version from the rollback targets', () => {
    const m = model([], { activations: [1, 2, 3] })
    m.activations = withoutActivation(m.activations, 3)
    expect(m.activations).toEqual([1, 2])
    m.activations = withoutActivation(m.activations, 7)
    expect(m.activations).toEqual([1, 2])
  })

  it('after a rollback from 3 to 2, the next default rollback target is 1', () => {
    const records = [1, 2, 3].map((v) => record(v, { verdict: 'passed' }))
    const m = model(records, { active: 3, retained: [2, 1], activations: [1, 2, 3] })
    // What a rollback does to the stack: 3 is dropped, 2 becomes the newest activation.
    m.activations = withoutActivation(m.activations, 3)
    m.activations = withActivation(m.activations, 2)
    m.active = loaded(2)
    m.retained = [loaded(1)]
    expect(previousActivation(m)).toBe(1)
  })
})
