import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metricSamples, postJson, type JsonResponse } from '../support/api-client.js'
import {
  constantOfShapeModel,
  identityModel,
  outerProductModel,
  reshapeToRequestModel,
  writeVersion,
} from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

/**
 * What one answer may cost, and the dims a request may declare. The attacks: a zero-element tensor
 * with a huge leading dim (nested JSON builds one `[]` per row: [1e8, 0] once took 107 s and the
 * process), and models whose answer grows far beyond the request (ConstantOfShape, an outer product).
 * Every refusal is a 4xx decided from dims before any encoding; the server serves on.
 */

function expectError(r: JsonResponse, status: number, code: string): string {
  expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(status)
  expect(r.body.error.code).toBe(code)
  return r.body.error.message as string
}

/** A typed float32 tensor of no elements. */
const empty = (shape: number[]) => ({ type: 'float32', shape, data: [] })

/** modelgate_requests_total with this status, summed over models and versions. */
async function requestCount(url: string, status: string): Promise<number> {
  const samples = await metricSamples(url)
  return samples
    .filter((s) => s.name === 'modelgate_requests_total' && s.labels.status === status)
    .reduce((n, s) => n + s.value, 0)
}

describe('the default limit (64 MiB)', () => {
  let t: TestServer
  beforeAll(async () => {
    // Identity on ['a', 'b']: the output has the input's shape, as every [batch, seq] NLP model's does.
    t = await startTestServer(async (dir) => {
      await writeVersion(dir, 'ident', 1, identityModel('float32', ['a', 'b']))
      await writeVersion(dir, 'deep', 1, reshapeToRequestModel())
    })
  })
  afterAll(() => t?.close())
  const url = () => `${t.url}/models/ident/predict`

  it('[1e8, 0] as nested arrays (about 300 MB of "[]") is output_too_large, decided before building one of them', async () => {
    const message = expectError(
      await postJson(url(), { inputs: { x: empty([100_000_000, 0]) } }),
      422,
      'output_too_large',
    )
    expect(message).toContain("output 'y'")
    expect(message).toContain('[100000000, 0]')
    expect(message).toContain('64 MiB')
    expect(message).toContain('--max-output-size')
    expect(message).toContain('"output_format": "typed"')
    expect((await postJson(url(), { inputs: { x: [[1, 2]] } })).body.outputs).toEqual({
      y: [[1, 2]],
    })
  })

  it('[1e8, 0] typed keeps its shape, and costs nothing', async () => {
    const r = await postJson(url(), {
      inputs: { x: empty([100_000_000, 0]) },
      output_format: 'typed',
    })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body.outputs).toEqual({ y: { type: 'float32', shape: [100_000_000, 0], data: [] } })
  })

  it('[1e8, 0] through V2, JSON and binary, keeps its shape', async () => {
    const infer = `${t.url}/v2/models/ident/infer`
    const input = { name: 'x', datatype: 'FP32', shape: [100_000_000, 0], data: [] }
    const json = await postJson(infer, { inputs: [input] })
    expect(json.status, JSON.stringify(json.body)).toBe(200)
    expect(json.body.outputs).toEqual([
      { name: 'y', datatype: 'FP32', shape: [100_000_000, 0], data: [] },
    ])
    const res = await fetch(infer, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [input], parameters: { binary_data_output: true } }),
    })
    expect(res.status).toBe(200)
    const body = Buffer.from(await res.arrayBuffer())
    expect(Number(res.headers.get('inference-header-content-length'))).toBe(body.length)
    expect(JSON.parse(body.toString()).outputs).toEqual([
      { name: 'y', datatype: 'FP32', shape: [100_000_000, 0], parameters: { binary_data_size: 0 } },
    ])
  })

  it('a dim beyond 2^31 - 1 is invalid_shape naming the input and the dim, in both APIs (it was a 500)', async () => {
    for (const shape of [
      [1e15, 0],
      [0, 2 ** 31],
      [2 ** 53 + 2, 0],
    ]) {
      const dim = shape[0] === 0 ? 1 : 0
      const simple = expectError(
        await postJson(url(), { inputs: { x: empty(shape) } }),
        400,
        'invalid_shape',
      )
      expect(simple).toContain("input 'x'")
      expect(simple).toContain(`dim ${dim}`)
      expect(simple).toContain('2147483647')
      const v2 = await postJson(`${t.url}/v2/models/ident/infer`, {
        inputs: [{ name: 'x', datatype: 'FP32', shape, data: [] }],
      })
      expect(v2.status).toBe(400)
      expect(v2.body.error).toContain(`dim ${dim}`)
    }
    // Binary data: the shape is checked before the (empty) binary section is read.
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'x', datatype: 'FP32', shape: [1e15, 0], parameters: { binary_data_size: 0 } },
        ],
      }),
    )
    const res = await fetch(`${t.url}/v2/models/ident/infer`, {
      method: 'POST',
      body: header,
      headers: { 'inference-header-content-length': String(header.length) },
    })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error: string }).error).toContain('dim 0')
  })

  it('an answer of rank 10,000 (a Reshape to 10,000 dims of 1) as nested arrays: 422 pointing to typed output, not a stack overflow (was a 500)', async () => {
    const deep = (rank: number, more: Record<string, unknown> = {}) =>
      postJson(`${t.url}/models/deep/predict`, {
        inputs: { x: [7], shape: new Array(rank).fill(1) },
        ...more,
      })
    for (const rank of [65, 10_000]) {
      const message = expectError(await deep(rank), 422, 'output_too_large')
      expect(message).toContain(`rank ${rank}`)
      expect(message).toContain('64')
      expect(message).toContain('"output_format": "typed"')
    }
    const typed = await deep(10_000, { output_format: 'typed' })
    expect(typed.status).toBe(200)
    expect(typed.body.outputs.y).toEqual({
      type: 'float32',
      shape: new Array(10_000).fill(1),
      data: [7],
    })
    // 64 deep is an answer like any other.
    let nested = (await deep(64)).body.outputs.y
    for (let depth = 0; depth < 64; depth++) nested = nested[0]
    expect(nested).toBe(7)
    const v2 = await postJson(`${t.url}/v2/models/deep/infer`, {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [1], data: [7] },
        { name: 'shape', datatype: 'INT64', shape: [10_000], data: new Array(10_000).fill(1) },
      ],
    })
    expect(v2.status).toBe(200)
    expect(v2.body.outputs[0].shape).toHaveLength(10_000)
  })

  it('2^31 - 1 itself is taken', async () => {
    const r = await postJson(url(), {
      inputs: { x: empty([2 ** 31 - 1, 0]) },
      output_format: 'typed',
    })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body.outputs.y.shape).toEqual([2 ** 31 - 1, 0])
  })
})

describe('--max-output-size 1mb', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(
      async (dir) => {
        await writeVersion(dir, 'fill', 1, constantOfShapeModel())
        await writeVersion(dir, 'outer', 1, outerProductModel())
        await writeVersion(dir, 'ident', 1, identityModel('float32', ['a', 'b']))
      },
      { maxOutputSize: '1mb' },
    )
  })
  afterAll(() => t?.close())

  const fill = (rows: number, cols: number) => ({
    shape: { type: 'int64', shape: [2], data: [rows, cols] },
  })
  const v2Fill = (rows: number, cols: number, parameters?: Record<string, unknown>) => ({
    inputs: [{ name: 'shape', datatype: 'INT64', shape: [2], data: [rows, cols] }],
    ...(parameters && { parameters }),
  })

  it('ConstantOfShape asked for [600, 600] from a 40-byte input: 422 in every format, each with its own advice', async () => {
    const nested = expectError(
      await postJson(`${t.url}/models/fill/predict`, { inputs: fill(600, 600) }),
      422,
      'output_too_large',
    )
    expect(nested).toContain('1 MiB')
    expect(nested).toContain('"output_format": "typed"')
    const typed = expectError(
      await postJson(`${t.url}/models/fill/predict`, {
        inputs: fill(600, 600),
        output_format: 'typed',
      }),
      422,
      'output_too_large',
    )
    expect(typed).not.toContain('"output_format": "typed"')
    expect(typed).toContain('"outputs"')
    const json = await postJson(`${t.url}/v2/models/fill/infer`, v2Fill(600, 600))
    expect(json.status).toBe(422)
    expect(json.body.error).toContain('binary_data_output')
    // 1.44 MB of raw float32 is over 1 MiB too.
    const binary = await postJson(
      `${t.url}/v2/models/fill/infer`,
      v2Fill(600, 600, { binary_data_output: true }),
    )
    expect(binary.status).toBe(422)
    expect(binary.body.error).toContain('--max-output-size')
  })

  it('the same model answers what fits: [100, 100] as JSON, [400, 400] as binary (640 KB)', async () => {
    const small = await postJson(`${t.url}/models/fill/predict`, { inputs: fill(100, 100) })
    expect(small.status, JSON.stringify(small.body).slice(0, 300)).toBe(200)
    expect(small.body.outputs.y).toHaveLength(100)
    const res = await fetch(`${t.url}/v2/models/fill/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(v2Fill(400, 400, { binary_data_output: true })),
    })
    expect(res.status).toBe(200)
    const headerLength = Number(res.headers.get('inference-header-content-length'))
    expect((await res.arrayBuffer()).byteLength - headerLength).toBe(400 * 400 * 4)
  })

  it('an outer product x[n] -> [n, n]: 422 for n = 600 (a 2 KB request), 200 for n = 100', async () => {
    const x = (n: number) => ({ inputs: { x: Array.from({ length: n }, (_, i) => i / 7) } })
    expectError(await postJson(`${t.url}/models/outer/predict`, x(600)), 422, 'output_too_large')
    const ok = await postJson(`${t.url}/models/outer/predict`, x(100))
    expect(ok.status).toBe(200)
    expect(ok.body.outputs.y[99][99]).toBeCloseTo((99 / 7) ** 2, 3)
  })

  it('a zero-element tensor whose nesting alone is over the limit: [1e6, 0]', async () => {
    expectError(
      await postJson(`${t.url}/models/ident/predict`, { inputs: { x: empty([1_000_000, 0]) } }),
      422,
      'output_too_large',
    )
    const typed = await postJson(`${t.url}/models/ident/predict`, {
      inputs: { x: empty([1_000_000, 0]) },
      output_format: 'typed',
    })
    expect(typed.status).toBe(200)
  })

  it('counts refusals in modelgate_requests_total like other 4xx', async () => {
    const before = await requestCount(t.url, '422')
    await postJson(`${t.url}/models/fill/predict`, { inputs: fill(600, 600) })
    await postJson(`${t.url}/v2/models/fill/infer`, v2Fill(600, 600))
    expect(await requestCount(t.url, '422')).toBe(before + 2)
  })
})
