import { Tensor } from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import {
  checkExpect,
  checkFinite,
  checkRange,
  predictedLabels,
  tallyLabels,
  withinTolerance,
} from '../../src/lifecycle/gate/smoke-checks.js'
import { normalizeCase, type SmokeCaseSpec } from '../../src/repository/smoke-file.js'
import { toFloat16Bits } from '../../src/runtime/float16.js'
import type { Signature, TensorSpec } from '../../src/runtime/signature.js'

/** The smoke stage's pure checks: one case's outputs against what the case expects. */

function smokeCase(
  spec: Partial<SmokeCaseSpec>,
  file: { tolerance?: { atol?: number; rtol?: number }; finite?: boolean } = {},
) {
  return normalizeCase({ inputs: [[0]], ...spec }, file, 'smoke.json#0')
}

function signatureOf(outputs: TensorSpec[]): Signature {
  return {
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', 4] }],
    outputs,
    omittedOutputs: [],
  }
}

const f32 = (data: number[], dims: number[]) => new Tensor('float32', Float32Array.from(data), dims)
const i64 = (data: bigint[], dims: number[]) => new Tensor('int64', BigInt64Array.from(data), dims)

describe('withinTolerance', () => {
  const tol = { atol: 1e-3, rtol: 1e-2 }

  it('accepts equal values and differences within atol + rtol * |want|', () => {
    expect(withinTolerance(1, 1, tol)).toBe(true)
    expect(withinTolerance(0.0009, 0, tol)).toBe(true)
    expect(withinTolerance(0.0011, 0, tol)).toBe(false)
    // 100 +- (0.001 + 1)
    expect(withinTolerance(101.0009, 100, tol)).toBe(true)
    expect(withinTolerance(98.99, 100, tol)).toBe(false)
  })

  it('is scaled by the expected value, not the one received', () => {
    // |want| = 1: the bound is 0.011 whatever `got` is.
    expect(withinTolerance(1.0105, 1, tol)).toBe(true)
    expect(withinTolerance(1.012, 1, tol)).toBe(false)
  })

  it('never accepts NaN for a finite expected value', () => {
    expect(withinTolerance(Number.NaN, 0, tol)).toBe(false)
    expect(withinTolerance(Number.NaN, 1, { atol: Infinity, rtol: 0 })).toBe(false)
  })

  it('matches NaN only with NaN, when NaN is what is expected', () => {
    expect(withinTolerance(Number.NaN, Number.NaN, tol)).toBe(true)
    expect(withinTolerance(0, Number.NaN, tol)).toBe(false)
  })

  it('matches infinities exactly', () => {
    expect(withinTolerance(Infinity, Infinity, tol)).toBe(true)
    expect(withinTolerance(-Infinity, -Infinity, tol)).toBe(true)
    expect(withinTolerance(-Infinity, Infinity, tol)).toBe(false)
    expect(withinTolerance(1e308, Infinity, tol)).toBe(false)
    expect(withinTolerance(Infinity, 1e308, tol)).toBe(false)
  })
})

describe('checkFinite', () => {
  it('passes finite float outputs and ignores integer ones', () => {
    expect(checkFinite({ y: f32([1, 2], [2]), n: i64([1n], [1]) })).toBeUndefined()
  })

  it('names the output and element of the first NaN or infinity', () => {
    expect(checkFinite({ y: f32([1, Number.NaN], [2]) })).toEqual({
      reason: 'non_finite_output',
      message: "output 'y'[1] is NaN",
    })
    expect(
      checkFinite({ y: new Tensor('float64', Float64Array.of(-Infinity), [1]) })?.message,
    ).toMatch(/-Infinity/)
  })

  it('checks float16 outputs by value', () => {
    const inf = new Tensor('float16', Uint16Array.of(toFloat16Bits(1), 0x7c00), [2])
    expect(checkFinite({ h: inf })).toMatchObject({
      reason: 'non_finite_output',
      message: "output 'h'[1] is Infinity",
    })
    expect(
      checkFinite({ h: new Tensor('float16', Uint16Array.of(toFloat16Bits(1.5)), [1]) }),
    ).toBeUndefined()
  })
})

describe('checkExpect', () => {
  const sig = signatureOf([
    { name: 'y', type: 'float32', shape: ['batch', 2] },
    { name: 'ids', type: 'int64', shape: ['batch'] },
    { name: 'h', type: 'float16', shape: ['batch'] },
    { name: 'names', type: 'string', shape: ['batch'] },
  ])

  it('passes nested expected values within the tolerance', () => {
    const c = smokeCase({
      expect: {
        y: [
          [1, 2],
          [3, 4],
        ],
      },
    })
    expect(checkExpect(c, sig, { y: f32([1.000001, 2, 3, 4.000001], [2, 2]) })).toBeUndefined()
  })

  it('names the output and flat index of the first value out of tolerance, with the tolerance', () => {
    const c = smokeCase({
      expect: {
        y: [
          [1, 2],
          [3, 4],
        ],
      },
    })
    const failure = checkExpect(c, sig, { y: f32([1, 2, 3.5, 4], [2, 2]) })
    expect(failure?.reason).toBe('expect_mismatch')
    expect(failure?.message).toMatch(/output 'y'\[2\] is 3\.5, expected 3/)
    expect(failure?.message).toMatch(/atol 0\.00001|atol 1e-5/)
  })

  it('uses the case tolerance, merged over the file tolerance', () => {
    const loose = smokeCase(
      { expect: { y: [[1, 2]] }, tolerance: { atol: 0.5 } },
      { tolerance: { rtol: 0 } },
    )
    expect(loose.tolerance).toEqual({ atol: 0.5, rtol: 0 })
    expect(checkExpect(loose, sig, { y: f32([1.4, 2.4], [1, 2]) })).toBeUndefined()
    expect(checkExpect(loose, sig, { y: f32([1.6, 2], [1, 2]) })?.reason).toBe('expect_mismatch')
  })

  it('reports a shape that differs even when the values would match', () => {
    const c = smokeCase({ expect: { y: [1, 2] } })
    const failure = checkExpect(c, sig, { y: f32([1, 2], [1, 2]) })
    expect(failure).toMatchObject({ reason: 'expect_mismatch' })
    expect(failure?.message).toMatch(/shape \[1,2\], expected \[2\]/)
  })

  it('takes typed expected values with a shape and flat data', () => {
    const c = smokeCase({ expect: { y: { type: 'float32', shape: [2, 2], data: [1, 2, 3, 4] } } })
    expect(checkExpect(c, sig, { y: f32([1, 2, 3, 4], [2, 2]) })).toBeUndefined()
    expect(checkExpect(c, sig, { y: f32([1, 2, 3, 5], [2, 2]) })?.message).toMatch(
      /'y'\[3\] is 5, expected 4/,
    )
  })

  it('compares int64 exactly, with values beyond 2^53 written as strings', () => {
    const big = 2n ** 53n + 1n
    const c = smokeCase({
      expect: { ids: { type: 'int64', shape: [2], data: [big.toString(), 7] } },
    })
    expect(checkExpect(c, sig, { ids: i64([big, 7n], [2]) })).toBeUndefined()
    // One off at 2^53 + 1: a float comparison could not tell these apart.
    const failure = checkExpect(c, sig, { ids: i64([big - 1n, 7n], [2]) })
    expect(failure?.reason).toBe('expect_mismatch')
    expect(failure?.message).toContain(big.toString())
    // Integers get no tolerance.
    const plain = smokeCase({ expect: { ids: [10, 20] }, tolerance: { atol: 5 } })
    expect(checkExpect(plain, sig, { ids: i64([11n, 20n], [2]) })?.reason).toBe('expect_mismatch')
  })

  it('compares float16 outputs by value', () => {
    const c = smokeCase({ expect: { h: [1.5, -2] } })
    expect(
      checkExpect(c, sig, {
        h: new Tensor('float16', Uint16Array.of(toFloat16Bits(1.5), toFloat16Bits(-2)), [2]),
      }),
    ).toBeUndefined()
  })

  it('compares string outputs exactly', () => {
    const c = smokeCase({ expect: { names: ['cat', 'dog'] } })
    expect(
      checkExpect(c, sig, { names: new Tensor('string', ['cat', 'dog'], [2]) }),
    ).toBeUndefined()
    expect(
      checkExpect(c, sig, { names: new Tensor('string', ['cat', 'cow'], [2]) })?.message,
    ).toMatch(/cow, expected dog/)
  })

  it('says the case is invalid for an output the model does not serve, or a value that is not of its type', () => {
    expect(
      checkExpect(smokeCase({ expect: { nope: [1] } }), sig, { y: f32([1, 2], [1, 2]) }),
    ).toMatchObject({
      reason: 'smoke_case_invalid',
      message: expect.stringMatching(/'nope'/),
    })
    const wrongType = smokeCase({ expect: { ids: { type: 'float32', shape: [1], data: [1] } } })
    expect(checkExpect(wrongType, sig, { ids: i64([1n], [1]) })?.reason).toBe('smoke_case_invalid')
    const notANumber = smokeCase({ expect: { y: [['a', 'b']] } })
    expect(checkExpect(notANumber, sig, { y: f32([1, 2], [1, 2]) })?.reason).toBe(
      'smoke_case_invalid',
    )
  })

  it('passes a case without expect', () => {
    expect(checkExpect(smokeCase({}), sig, { y: f32([1, 2], [1, 2]) })).toBeUndefined()
  })
})

describe('checkRange', () => {
  it('passes values within [min, max], bounds included', () => {
    const c = smokeCase({ range: { y: { min: 0, max: 1 } } })
    expect(checkRange(c, { y: f32([0, 0.5, 1], [3]) })).toBeUndefined()
  })

  it('reports the first value outside, with the bounds', () => {
    const c = smokeCase({ range: { y: { min: 0, max: 1 } } })
    expect(checkRange(c, { y: f32([0.5, 1.5], [2]) })).toEqual({
      reason: 'out_of_range',
      message: "output 'y'[1] = 1.5 is outside [0, 1]",
    })
    expect(checkRange(c, { y: f32([-0.5], [1]) })?.reason).toBe('out_of_range')
  })

  it('takes a one-sided range', () => {
    expect(
      checkRange(smokeCase({ range: { y: { min: 0 } } }), { y: f32([1e30], [1]) }),
    ).toBeUndefined()
    expect(
      checkRange(smokeCase({ range: { y: { max: 0 } } }), { y: f32([1], [1]) })?.message,
    ).toMatch(/outside \[-inf, 0\]/)
  })

  it('treats NaN as out of range', () => {
    expect(
      checkRange(smokeCase({ range: { y: { min: 0, max: 1 } } }), { y: f32([Number.NaN], [1]) })
        ?.reason,
    ).toBe('out_of_range')
  })

  it('checks integer outputs', () => {
    expect(
      checkRange(smokeCase({ range: { ids: { min: 0, max: 2 } } }), { ids: i64([0n, 3n], [2]) })
        ?.reason,
    ).toBe('out_of_range')
  })

  it('says the case is invalid for an unknown or non-numeric output', () => {
    expect(
      checkRange(smokeCase({ range: { nope: { min: 0 } } }), { y: f32([1], [1]) })?.reason,
    ).toBe('smoke_case_invalid')
    expect(
      checkRange(smokeCase({ range: { s: { min: 0 } } }), { s: new Tensor('string', ['a'], [1]) })
        ?.reason,
    ).toBe('smoke_case_invalid')
  })
})

describe('predictedLabels', () => {
  it('takes the argmax over the last axis of float scores, one per row', () => {
    expect(predictedLabels(f32([0.1, 0.7, 0.2, 0.9, 0.05, 0.05], [2, 3]))).toEqual([1, 0])
  })

  it('takes the first of equal top scores', () => {
    expect(predictedLabels(f32([0.5, 0.5, 0], [1, 3]))).toEqual([0])
  })

  it('reads a 1-D score vector as one row', () => {
    expect(predictedLabels(f32([0, 0, 3], [3]))).toEqual([2])
  })

  it('returns int64 labels as numbers', () => {
    expect(predictedLabels(i64([2n, 0n, 1n], [3]))).toEqual([2, 0, 1])
    expect(predictedLabels(new Tensor('int32', Int32Array.of(4), [1]))).toEqual([4])
  })

  it('returns string labels as they are', () => {
    expect(predictedLabels(new Tensor('string', ['setosa', 'virginica'], [2]))).toEqual([
      'setosa',
      'virginica',
    ])
  })

  it('gives no labels for an empty batch', () => {
    expect(predictedLabels(f32([], [0, 3]))).toEqual([])
  })
})

describe('tallyLabels', () => {
  it('counts a right label', () => {
    const c = smokeCase({ label: { output: 'scores', value: 1 } })
    expect(tallyLabels(c, { scores: f32([0, 1, 0], [1, 3]) })).toEqual({
      correct: 1,
      total: 1,
      mismatches: [],
    })
  })

  it('counts one label per row for a batch, and names each wrong row', () => {
    const c = smokeCase({ name: 'batch', label: { output: 'label', value: [0, 1, 2] } })
    const tally = tallyLabels(c, { label: i64([0n, 2n, 2n], [3]) })
    expect(tally).toEqual({
      correct: 2,
      total: 3,
      mismatches: ['batch[1]: predicted 2, expected 1'],
    })
  })

  it('compares string labels', () => {
    const c = smokeCase({ name: 'flower', label: { output: 'label', value: 'setosa' } })
    expect(tallyLabels(c, { label: new Tensor('string', ['versicolor'], [1]) })).toEqual({
      correct: 0,
      total: 1,
      mismatches: ['flower: predicted "versicolor", expected "setosa"'],
    })
  })

  it('does not take a number for a string label or the reverse', () => {
    const c = smokeCase({ label: { output: 'label', value: '1' } })
    expect(tallyLabels(c, { label: i64([1n], [1]) })).toMatchObject({ correct: 0, total: 1 })
  })

  it('says the case is invalid when the rows and labels do not pair up, or the output is unknown', () => {
    const c = smokeCase({ label: { output: 'label', value: [0, 1] } })
    expect(tallyLabels(c, { label: i64([0n], [1]) })).toMatchObject({
      reason: 'smoke_case_invalid',
    })
    const unknown = smokeCase({ label: { output: 'probabilities', value: 0 } })
    expect(tallyLabels(unknown, { label: i64([0n], [1]) })).toMatchObject({
      reason: 'smoke_case_invalid',
      message: expect.stringMatching(/probabilities/),
    })
  })
})
