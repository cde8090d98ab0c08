import { Tensor } from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { compareAnswers } from '../../src/dataplane/shadow-mirror.js'

const tolerance = { atol: 1e-5, rtol: 1e-3 }
const scores = (...v: number[]) => new Tensor('float32', Float32Array.from(v), [v.length / 3, 3])
const labels = (...v: number[]) =>
  new Tensor('int64', BigInt64Array.from(v.map(BigInt)), [v.length])

describe('compareAnswers', () => {
  it('agrees on a label output when every row has the same label, whatever the scores', () => {
    const a = { scores: scores(1, 0, 0, 0, 1, 0), label: labels(0, 1) }
    const b = { scores: scores(0.9, 0, 0, 0, 0.8, 0), label: labels(0, 1) }
    const c = compareAnswers(a, b, ['scores', 'label'], { min: 0.9, output: 'label', tolerance })
    expect(c.agreed).toBe(true)
    // Over the float output only: |1-0.9| + |1-0.8| over 6 values.
    expect(c.meanAbsDiff).toBeCloseTo(0.3 / 6, 6)
    const d = { ...b, label: labels(0, 2) }
    expect(
      compareAnswers(a, d, ['scores', 'label'], { min: 0.9, output: 'label', tolerance }).agreed,
    ).toBe(false)
  })

  it('takes the argmax of a float output named as the label', () => {
    const a = { scores: scores(1, 0, 0) }
    const b = { scores: scores(0.5, 0.4, 0) }
    expect(compareAnswers(a, b, ['scores'], { min: 1, output: 'scores', tolerance }).agreed).toBe(
      true,
    )
  })

  it('without a label output, agrees only when every shared output is within the tolerance', () => {
    const a = { scores: scores(1, 0, 0), label: labels(0) }
    const near = { scores: scores(1.0005, 0, 0), label: labels(0) }
    const far = { scores: scores(1.01, 0, 0), label: labels(0) }
    expect(compareAnswers(a, near, ['scores', 'label'], { min: 1, tolerance }).agreed).toBe(true)
    expect(compareAnswers(a, far, ['scores', 'label'], { min: 1, tolerance }).agreed).toBe(false)
  })

  it('disagrees when the label output is missing from an answer, and has no difference without floats', () => {
    const a = { label: labels(0) }
    const c = compareAnswers(a, {}, ['label'], { min: 1, output: 'label', tolerance })
    expect(c).toEqual({ agreed: false, meanAbsDiff: null })
    expect(compareAnswers(a, a, ['label'], { min: 1, tolerance })).toEqual({
      agreed: true,
      meanAbsDiff: null,
    })
  })
})
