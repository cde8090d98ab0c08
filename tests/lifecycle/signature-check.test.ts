import { describe, expect, it } from 'vitest'
import type { Contract } from '../../src/lifecycle/gate/gate-types.js'
import { signatureChanges } from '../../src/lifecycle/gate/signature-check.js'
import type { Dim, Signature, TensorSpec } from '../../src/runtime/signature.js'

/** The signature stage's rule: what would break a client that works with the contract. */

function spec(
  name: string,
  type: TensorSpec['type'] = 'float32',
  shape: readonly Dim[] | null = ['batch', 4],
): TensorSpec {
  return { name, type, shape }
}

function contract(
  inputs: TensorSpec[],
  outputs: TensorSpec[],
  source: Contract['source'] = 'active',
): Contract {
  return { source, inputs, outputs }
}

function signature(inputs: TensorSpec[], outputs: TensorSpec[]): Signature {
  return { inputs, outputs, omittedOutputs: [] }
}

const base = contract([spec('x')], [spec('y')])

describe('signatureChanges', () => {
  it('finds nothing for the same signature', () => {
    expect(signatureChanges(base, signature([spec('x')], [spec('y')]))).toEqual([])
  })

  it('reports a removed input', () => {
    const c = contract([spec('a'), spec('b')], [spec('y')])
    expect(signatureChanges(c, signature([spec('a')], [spec('y')]))).toEqual(["input 'b' is gone"])
  })

  it('reports an added input: clients do not send it', () => {
    const changes = signatureChanges(base, signature([spec('x'), spec('mask')], [spec('y')]))
    expect(changes).toHaveLength(1)
    expect(changes[0]).toMatch(/input 'mask' is new/)
  })

  it('reports a renamed input as one gone and one new', () => {
    const changes = signatureChanges(base, signature([spec('features')], [spec('y')]))
    expect(changes).toEqual(
      expect.arrayContaining([
        "input 'x' is gone",
        expect.stringMatching(/input 'features' is new/),
      ]),
    )
    expect(changes).toHaveLength(2)
  })

  it('reports a removed output', () => {
    const c = contract([spec('x')], [spec('label', 'int64', ['batch']), spec('scores')])
    expect(signatureChanges(c, signature([spec('x')], [spec('scores')]))).toEqual([
      "output 'label' is gone",
    ])
  })

  it('accepts an added output: it breaks nobody', () => {
    expect(signatureChanges(base, signature([spec('x')], [spec('y'), spec('extra')]))).toEqual([])
  })

  it('reports element type changes of inputs and outputs', () => {
    const changes = signatureChanges(
      base,
      signature([spec('x', 'float64')], [spec('y', 'float16')]),
    )
    expect(changes).toEqual([
      "input 'x' changed type float32 -> float64",
      "output 'y' changed type float32 -> float16",
    ])
  })

  it('reports rank changes of inputs and outputs', () => {
    expect(
      signatureChanges(base, signature([spec('x', 'float32', ['batch', 2, 2])], [spec('y')])),
    ).toEqual(["input 'x' changed rank 2 -> 3"])
    expect(
      signatureChanges(base, signature([spec('x')], [spec('y', 'float32', ['batch'])])),
    ).toEqual(["output 'y' changed rank 2 -> 1"])
  })

  it('treats unknown ranks as loose: an input that loses its shape takes anything, an output that does may break readers', () => {
    expect(signatureChanges(base, signature([spec('x', 'float32', null)], [spec('y')]))).toEqual([])
    expect(signatureChanges(base, signature([spec('x')], [spec('y', 'float32', null)]))).toEqual([
      "output 'y' changed rank 2 -> unknown",
    ])
    const unknown = contract([spec('x', 'float32', null)], [spec('y', 'float32', null)])
    expect(signatureChanges(unknown, signature([spec('x')], [spec('y')]))).toEqual([])
    expect(signatureChanges(unknown, signature([spec('x', 'float32', null)], [spec('y')]))).toEqual(
      [],
    )
  })

  it('checks only names and types against a model.json contract without shapes', () => {
    const loose = {
      source: 'model.json' as const,
      inputs: [{ name: 'x', type: 'float32' as const, shape: undefined }],
      outputs: [{ name: 'y', type: 'float32' as const, shape: undefined }],
    }
    expect(
      signatureChanges(
        loose,
        signature([spec('x', 'float32', [1, 2, 3])], [spec('y', 'float32', [7])]),
      ),
    ).toEqual([])
    expect(signatureChanges(loose, signature([spec('x', 'int64', [1])], [spec('y')]))).toEqual([
      "input 'x' changed type float32 -> int64",
    ])
  })

  it('reports a fixed input dim that changed size', () => {
    expect(
      signatureChanges(base, signature([spec('x', 'float32', ['batch', 8])], [spec('y')])),
    ).toEqual(["input 'x' dim 1 changed 4 -> 8"])
  })

  it('reports a dynamic input dim that became fixed: clients sending other sizes break', () => {
    expect(signatureChanges(base, signature([spec('x', 'float32', [1, 4])], [spec('y')]))).toEqual([
      "input 'x' dim 0 changed batch -> 1",
    ])
    const unnamed = contract([spec('x', 'float32', [null, 4])], [spec('y')])
    expect(
      signatureChanges(unnamed, signature([spec('x', 'float32', [16, 4])], [spec('y')])),
    ).toEqual(["input 'x' dim 0 changed ? -> 16"])
  })

  it('accepts loosened input dims and renamed symbolic dims', () => {
    const fixed = contract([spec('x', 'float32', [1, 4])], [spec('y', 'float32', [1, 4])])
    expect(
      signatureChanges(
        fixed,
        signature([spec('x', 'float32', ['batch', 4])], [spec('y', 'float32', [1, 4])]),
      ),
    ).toEqual([])
    expect(
      signatureChanges(
        fixed,
        signature([spec('x', 'float32', [null, null])], [spec('y', 'float32', [1, 4])]),
      ),
    ).toEqual([])
    expect(
      signatureChanges(
        base,
        signature([spec('x', 'float32', ['N', 4])], [spec('y', 'float32', ['N', 4])]),
      ),
    ).toEqual([])
  })

  it('reports a fixed output dim that changed size, but not a dynamic output dim that became fixed', () => {
    expect(
      signatureChanges(base, signature([spec('x')], [spec('y', 'float32', ['batch', 3])])),
    ).toEqual(["output 'y' dim 1 changed 4 -> 3"])
    expect(signatureChanges(base, signature([spec('x')], [spec('y', 'float32', [1, 4])]))).toEqual(
      [],
    )
  })

  it('holds a candidate to a model.json contract the same way', () => {
    const declared = contract(
      [spec('x', 'float32', ['batch', 4])],
      [spec('y', 'float32', ['batch', 4])],
      'model.json',
    )
    expect(signatureChanges(declared, signature([spec('x')], [spec('y')]))).toEqual([])
    expect(
      signatureChanges(
        declared,
        signature([spec('x', 'float32', ['batch', 8])], [spec('y', 'float32', ['batch', 8])]),
      ),
    ).toEqual(["input 'x' dim 1 changed 4 -> 8", "output 'y' dim 1 changed 4 -> 8"])
  })

  it('lists every change, not only the first', () => {
    const c = contract([spec('a'), spec('b')], [spec('p'), spec('q')])
    const changes = signatureChanges(
      c,
      signature([spec('a', 'int64'), spec('c')], [spec('p', 'float32', ['batch'])]),
    )
    expect(changes).toHaveLength(5) // b gone, a type, c new, p rank, q gone
  })
})
