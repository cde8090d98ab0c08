import { Tensor } from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { answerOf, answerPlan } from '../../src/dataplane/prediction-answer.js'
import type { ElementType } from '../../src/runtime/element-type.js'
import { toFloat16Bits } from '../../src/runtime/float16.js'
import type { Signature, TensorSpec } from '../../src/runtime/signature.js'

/** A signature with these outputs (name: type), in order, and one input nobody looks at. */
function signature(outputs: Record<string, ElementType>): Signature {
  const spec = ([name, type]: [string, ElementType]): TensorSpec => ({ name, type, shape: null })
  return {
    inputs: [spec(['x', 'float32'])],
    outputs: Object.entries(outputs).map(spec),
    omittedOutputs: [],
  }
}

describe('answerPlan', () => {
  it('takes the configured output as the label', () => {
    const plan = answerPlan(
      signature({ scores: 'float32', label: 'int64', klass: 'int32' }),
      'klass',
    )
    expect(plan.label).toEqual({ output: 'klass', argmax: false })
  })

  it('takes the argmax of a configured float output', () => {
    const plan = answerPlan(signature({ label: 'int64', scores: 'float32' }), 'scores')
    expect(plan.label).toEqual({ output: 'scores', argmax: true })
  })

  it('has no label when the configured output is not in the signature', () => {
    expect(answerPlan(signature({ label: 'int64' }), 'missing').label).toBeUndefined()
  })

  it('takes an output named label before any other', () => {
    const plan = answerPlan(signature({ klass: 'int64', label: 'string' }), undefined)
    expect(plan.label).toEqual({ output: 'label', argmax: false })
  })

  it('takes the argmax of an output named label when it is float', () => {
    const plan = answerPlan(signature({ klass: 'int64', label: 'float32' }), undefined)
    expect(plan.label).toEqual({ output: 'label', argmax: true })
  })

  it.each<ElementType>(['int64', 'int32', 'string'])(
    'takes the first %s output, before a float one',
    (type) => {
      const plan = answerPlan(
        signature({ probabilities: 'float32', flags: 'bool', first: type, second: 'int64' }),
        undefined,
      )
      expect(plan.label).toEqual({ output: 'first', argmax: false })
    },
  )

  it('takes the argmax of the first float output when there is no int or string one', () => {
    const plan = answerPlan(
      signature({ flags: 'bool', bytes: 'uint8', logits: 'float64', other: 'float32' }),
      undefined,
    )
    expect(plan.label).toEqual({ output: 'logits', argmax: true })
  })

  it('has no label without a float, int64, int32 or string output', () => {
    expect(
      answerPlan(signature({ flags: 'bool', bytes: 'uint8' }), undefined).label,
    ).toBeUndefined()
  })

  it('takes the first numeric output as the value', () => {
    expect(
      answerPlan(signature({ name: 'string', y: 'float32', z: 'int64' }), undefined).value,
    ).toBe('y')
    expect(answerPlan(signature({ flags: 'bool', n: 'int8' }), undefined).value).toBe('n')
    // The label itself when it comes first.
    expect(answerPlan(signature({ label: 'int64', y: 'float32' }), undefined).value).toBe('label')
    expect(
      answerPlan(signature({ name: 'string', flags: 'bool' }), undefined).value,
    ).toBeUndefined()
  })
})

describe('answerOf', () => {
  it('reads a label per row and a value per row from the first element of each', () => {
    const plan = answerPlan(signature({ y: 'float32', label: 'int64' }), undefined)
    const answer = answerOf(plan, {
      label: new Tensor('int64', new BigInt64Array([3n, 0n, 7n]), [3]),
      y: new Tensor('float32', new Float32Array([0.5, 9, 1.25, 9, -2, 9]), [3, 2]),
    })
    expect(answer).toEqual({ labels: ['3', '0', '7'], values: [0.5, 1.25, -2] })
  })

  it('keeps int64 labels beyond 2^53 exact', () => {
    const plan = answerPlan(signature({ label: 'int64' }), undefined)
    const big = 2n ** 53n + 1n
    const answer = answerOf(plan, {
      label: new Tensor('int64', new BigInt64Array([big, -big]), [2]),
    })
    expect(answer.labels).toEqual(['9007199254740993', '-9007199254740993'])
    // As a number it would be 2^53, a different label.
    expect(answer.labels).not.toContain(String(Number(big)))
  })

  it('reads string labels as they are', () => {
    const plan = answerPlan(signature({ label: 'string' }), undefined)
    const answer = answerOf(plan, { label: new Tensor('string', ['cat', 'dog'], [2, 1]) })
    expect(answer).toEqual({ labels: ['cat', 'dog'], values: undefined })
  })

  it('takes the argmax of each row of a float output', () => {
    const plan = answerPlan(signature({ logits: 'float32' }), undefined)
    const answer = answerOf(plan, {
      logits: new Tensor('float32', new Float32Array([0.1, 0.7, 0.2, -5, -6, -1, 2, 2, 1]), [3, 3]),
    })
    // Ties go to the first of the highest.
    expect(answer.labels).toEqual(['1', '2', '0'])
    expect(answer.values).toEqual([Math.fround(0.1), -5, 2])
  })

  it('reads float16 outputs by value, not by their bit patterns', () => {
    // onnxruntime-node carries float16 as Uint16Array bits; a negative half has the larger bits.
    const plan = answerPlan(signature({ logits: 'float16' }), undefined)
    const halves = [-1, -2, 0.5, 0.25].map(toFloat16Bits)
    const answer = answerOf(plan, {
      logits: new Tensor('float16', new Uint16Array(halves), [2, 2]),
    })
    expect(answer).toEqual({ labels: ['0', '0'], values: [-1, 0.5] })
  })

  it('reads a scalar output as one row', () => {
    const plan = answerPlan(signature({ y: 'float64' }), undefined)
    expect(answerOf(plan, { y: new Tensor('float64', new Float64Array([4.5]), []) })).toEqual({
      labels: ['0'],
      values: [4.5],
    })
  })

  it('reads int64 values as numbers', () => {
    const plan = answerPlan(signature({ n: 'int64' }), undefined)
    expect(
      answerOf(plan, { n: new Tensor('int64', new BigInt64Array([5n, -2n]), [2]) }).values,
    ).toEqual([5, -2])
  })

  it('scores 1024 rows and no more', () => {
    const plan = answerPlan(signature({ y: 'float32', label: 'int32' }), undefined)
    const rows = (n: number) => ({
      label: new Tensor('int32', new Int32Array(n).fill(1), [n]),
      y: new Tensor('float32', new Float32Array(n), [n]),
    })
    const most = answerOf(plan, rows(1024))
    expect(most.labels).toHaveLength(1024)
    expect(most.values).toHaveLength(1024)
    expect(answerOf(plan, rows(1025))).toEqual({ labels: undefined, values: undefined })
  })

  it('has nothing to score in a prediction of no rows', () => {
    const plan = answerPlan(signature({ y: 'float32', label: 'int32' }), undefined)
    const answer = answerOf(plan, {
      label: new Tensor('int32', new Int32Array(0), [0]),
      y: new Tensor('float32', new Float32Array(0), [0, 4]),
    })
    expect(answer).toEqual({ labels: undefined, values: undefined })
  })

  it('has no label or value from outputs that were not fetched', () => {
    const plan = answerPlan(signature({ y: 'float32', label: 'int64' }), undefined)
    const y = new Tensor('float32', new Float32Array([1]), [1])
    expect(answerOf(plan, { y })).toEqual({ labels: undefined, values: [1] })
    const label = new Tensor('int64', new BigInt64Array([1n]), [1])
    expect(answerOf(plan, { label })).toEqual({ labels: ['1'], values: undefined })
    expect(answerOf(plan, {})).toEqual({ labels: undefined, values: undefined })
  })

  it('has no label or value when the plan has none', () => {
    const plan = answerPlan(signature({ flags: 'bool' }), undefined)
    const flags = new Tensor('bool', new Uint8Array([1]), [1])
    expect(answerOf(plan, { flags })).toEqual({ labels: undefined, values: undefined })
  })
})
