import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postJson } from './support/api-client.js'
import {
  cases,
  compareOutput,
  writeConformanceModels,
  type CaseTensor,
  type Json,
} from './support/conformance.js'
import { startTestServer, type TestServer } from './support/test-server.js'

/**
 * The ONNX backend node-test subset (tests/fixtures/onnx-node, see its README) served
 * end to end: every case is a model of its own on one server, fed its inputs as typed JSON
 * tensors, and every output is compared with the manifest (dims exact, floats within tolerance).
 */

/** Flat row-major data -> nested arrays (a bare value for a scalar), as a client would send it. */
function nest(data: readonly Json[], dims: readonly number[]): unknown {
  if (dims.length === 0) return data[0]
  const [n, ...rest] = dims as [number, ...number[]]
  const stride = rest.reduce((a, b) => a * b, 1)
  return Array.from({ length: n }, (_, i) => nest(data.slice(i * stride, (i + 1) * stride), rest))
}

/** Nested arrays -> flat data, checking the nesting against dims; a string says what is wrong. */
function flatten(value: unknown, dims: readonly number[], at = ''): unknown[] | string {
  if (dims.length === 0)
    return Array.isArray(value) ? `${at}: an array where a value belongs` : [value]
  if (!Array.isArray(value) || value.length !== dims[0]) {
    return `${at}: expected ${dims[0]} elements, got ${Array.isArray(value) ? value.length : JSON.stringify(value)}`
  }
  const out: unknown[] = []
  for (let i = 0; i < value.length; i++) {
    const child = flatten(value[i], dims.slice(1), `${at}[${i}]`)
    if (typeof child === 'string') return child
    out.push(...child)
  }
  return out
}

describe('ONNX node-test conformance through POST /models/{case}/predict', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeConformanceModels(dir)
    })
  }, 120_000)
  afterAll(() => t?.close())

  it('has the 64 cases the README describes', () => {
    expect(cases).toHaveLength(64)
  })

  it.each(cases)('$name (typed tensors)', async (c) => {
    const inputs: Record<string, unknown> = {}
    for (const i of c.inputs) inputs[i.name] = { type: i.type, dims: i.dims, data: i.data }
    const r = await postJson(`${t.url}/models/${c.name}/predict`, {
      inputs,
      output_format: 'typed',
    })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body).toMatchObject({ model: c.name, version: 1 })
    const outputs = r.body.outputs as Record<string, unknown>
    expect(Object.keys(outputs).sort()).toEqual(c.outputs.map((o) => o.name).sort())
    const problems = c.outputs.flatMap((o) => compareOutput(outputs[o.name], o, c.tolerance))
    expect(problems).toEqual([])
  })

  // The same cases as applications send them: nested arrays, bare scalars, and a bare tensor for a
  // model with one input; nested outputs are checked against the expected dims, then compared.
  it.each(cases)('$name (nested arrays)', async (c) => {
    const named = Object.fromEntries(c.inputs.map((i) => [i.name, nest(i.data, i.dims)]))
    const inputs = c.inputs.length === 1 ? named[c.inputs[0]!.name] : named
    const r = await postJson(`${t.url}/models/${c.name}/predict`, { inputs })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    const outputs = r.body.outputs as Record<string, unknown>
    expect(Object.keys(outputs).sort()).toEqual(c.outputs.map((o) => o.name).sort())
    const problems = c.outputs.flatMap((o) => {
      const data = flatten(outputs[o.name], o.dims, `output '${o.name}'`)
      return typeof data === 'string'
        ? [data]
        : compareOutput({ type: o.type, shape: o.dims, data }, o, c.tolerance)
    })
    expect(problems).toEqual([])
  })

  // The README allows `[3]` for a scalar input: it is fed as the scalar, so a kernel written for one
  // (Einsum "->") does not refuse it with a 500 (found by tests/fuzz).
  const withScalars = cases.filter((c) => c.inputs.some((i) => i.dims.length === 0))
  it.each(withScalars)('$name (every scalar input sent as [x])', async (c) => {
    const inputs = Object.fromEntries(
      c.inputs.map((i) => [i.name, i.dims.length === 0 ? [i.data[0]] : nest(i.data, i.dims)]),
    )
    const r = await postJson(`${t.url}/models/${c.name}/predict`, {
      inputs,
      output_format: 'typed',
    })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    const outputs = r.body.outputs as Record<string, unknown>
    expect(c.outputs.flatMap((o) => compareOutput(outputs[o.name], o, c.tolerance))).toEqual([])
  })
})

describe('the conformance comparison itself', () => {
  const tol = { rtol: 1e-3, atol: 1e-5 }
  const tensor = (type: string, data: Json[], dims = [data.length]): CaseTensor => ({
    name: 'y',
    type,
    dims,
    data,
  })

  it('fails on a float outside the tolerance, a NaN against a number and a wrong shape', () => {
    expect(
      compareOutput({ type: 'float32', shape: [1], data: [1.01] }, tensor('float32', [1]), tol),
    ).toHaveLength(1)
    expect(
      compareOutput({ type: 'float32', shape: [1], data: ['NaN'] }, tensor('float32', [1]), tol),
    ).toHaveLength(1)
    expect(
      compareOutput({ type: 'float32', shape: [1, 1], data: [1] }, tensor('float32', [1]), tol),
    ).toHaveLength(1)
    expect(
      compareOutput(
        { type: 'float32', shape: [2], data: ['NaN', 'Infinity'] },
        tensor('float32', ['NaN', 'Infinity']),
        tol,
      ),
    ).toEqual([])
    expect(
      compareOutput(
        { type: 'float32', shape: [1], data: ['-Infinity'] },
        tensor('float32', ['Infinity']),
        tol,
      ),
    ).toHaveLength(1)
  })

  it('compares int64 as BigInt and insists on numbers below 2^53 and strings beyond', () => {
    const big = '9223372036854775807'
    expect(
      compareOutput(
        { type: 'int64', shape: [2], data: [5, big] },
        tensor('int64', ['5', big]),
        tol,
      ),
    ).toEqual([])
    expect(
      compareOutput({ type: 'int64', shape: [1], data: ['5'] }, tensor('int64', ['5']), tol),
    ).toHaveLength(1)
    expect(
      compareOutput(
        { type: 'int64', shape: [1], data: ['9223372036854775806'] },
        tensor('int64', [big]),
        tol,
      ),
    ).toHaveLength(1)
    expect(
      compareOutput({ type: 'uint8', shape: [1], data: [3] }, tensor('uint8', [4]), tol),
    ).toHaveLength(1)
  })

  it('nests and flattens by dims, and notices nesting that does not fit them', () => {
    expect(nest([1, 2, 3, 4, 5, 6], [2, 3])).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ])
    expect(nest([], [3, 0, 5])).toEqual([[], [], []])
    expect(nest([7], [])).toBe(7)
    expect(
      flatten(
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        [2, 3],
      ),
    ).toEqual([1, 2, 3, 4, 5, 6])
    expect(flatten([[], [], []], [3, 0, 5])).toEqual([])
    expect(typeof flatten([[1, 2], [3]], [2, 2])).toBe('string')
    expect(typeof flatten([[1, 2]], [2])).toBe('string')
    expect(typeof flatten([7], [])).toBe('string')
  })
})
