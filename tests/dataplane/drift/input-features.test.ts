import { Tensor } from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { InputFeatures, type ValueSink } from '../../../src/dataplane/drift/input-features.js'
import type { Signature } from '../../../src/runtime/signature.js'

function signature(...inputs: Signature['inputs']): Signature {
  return { inputs, outputs: [], omittedOutputs: [] }
}

/** Every value each feature was handed. */
function observed(features: InputFeatures, feeds: Record<string, Tensor>): unknown[][] {
  const sinks = features.features.map(() => {
    const values: unknown[] = []
    return { values, add: (v: unknown) => values.push(v) } satisfies ValueSink & {
      values: unknown[]
    }
  })
  features.observe(feeds, sinks)
  return sinks.map((s) => s.values)
}

describe('drift features of the inputs', () => {
  it('has a feature per column of a [batch, F] input, one for a rank-1 input, and frequencies of strings', () => {
    const f = new InputFeatures(
      signature(
        { name: 'x', type: 'float32', shape: ['batch', 3] },
        { name: 'n', type: 'int64', shape: [null] },
        { name: 's', type: 'string', shape: ['batch', 2] },
      ),
    )
    expect(f.features.map((x) => [x.input, x.feature, x.kind])).toEqual([
      ['x', '0', 'numeric'],
      ['x', '1', 'numeric'],
      ['x', '2', 'numeric'],
      ['n', '', 'numeric'],
      ['s', 'frequency', 'category'],
    ])
    const values = observed(f, {
      x: new Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]),
      n: new Tensor('int64', BigInt64Array.from([7n, 8n]), [2]),
      s: new Tensor('string', ['a', 'b', 'c', 'a'], [2, 2]),
    })
    expect(values).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
      [7, 8],
      ['a', 'b', 'c', 'a'],
    ])
  })
  it('summarizes each sample of a higher-rank input by its mean and standard deviation', () => {
    const f = new InputFeatures(signature({ name: 'img', type: 'float32', shape: [null, 2, 2] }))
    expect(f.features.map((x) => x.feature)).toEqual(['mean', 'std'])
    const [mean, std] = observed(f, {
      img: new Tensor('float32', Float32Array.from([1, 1, 1, 1, 0, 2, 0, 2]), [2, 2, 2]),
    })
    expect(mean).toEqual([1, 1])
    expect(std).toEqual([0, 1])
  })
  it('has no feature for an input of unknown rank, and skips a tensor whose width does not fit', () => {
    const f = new InputFeatures(
      signature(
        { name: 'any', type: 'float32', shape: null },
        { name: 'x', type: 'float32', shape: ['batch', 2] },
      ),
    )
    expect(f.features.map((x) => x.input)).toEqual(['x', 'x'])
    expect(observed(f, { x: new Tensor('float32', Float32Array.from([1, 2, 3]), [1, 3]) })).toEqual(
      [[], []],
    )
  })
})
