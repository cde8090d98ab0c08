import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  BIG_INTS,
  cases,
  FLOATS,
  floatMatches,
  NON_FINITE,
  wireFloat,
  writeConformanceModels,
  type CaseTensor,
  type ConformanceCase,
  type Json,
} from '../support/conformance.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import {
  decodeBinary,
  encodeBinary,
  flat,
  postBinary,
  postJson,
  splitResponse,
  V2_OF_ONNX,
  type Element,
  type Value,
  type V2Datatype,
} from './v2-support.js'

/**
 * The ONNX backend node-test subset (tests/fixtures/onnx-node, see its README) through the V2
 * protocol: every case is a model of its own on one server, fed its inputs as V2 tensors, and every
 * output is compared with the manifest (dims exact, floats within tolerance, others exact), as
 * tests/conformance.test.ts does for the simple API.
 * - KServe V2 "Inference" / "Tensor Data" / "Tensor Data Types": inputs as JSON tensors; INT64 and
 *   UINT64 as plain number literals (written into the raw body text; the manifest holds them as
 *   decimal strings). JSON has no NaN/Infinity: modelgate takes and gives "NaN", "Infinity", "-Infinity".
 * - Triton binary tensor data extension: a second pass with every input and every output binary.
 */

function datatypeOf(type: string): V2Datatype {
  const dt = V2_OF_ONNX[type]
  if (!dt) throw new Error(`no V2 datatype for ${type}`)
  return dt
}

/** A manifest element as the test sends it: bigint for 64-bit ints, a number for floats (NaN etc. included). */
function element(type: string, value: Json): Element {
  if (BIG_INTS.has(type)) return BigInt(value as string)
  if (FLOATS.has(type)) return typeof value === 'string' ? NON_FINITE[value]! : (value as number)
  return value
}

/** INT64/UINT64 in V2 JSON are number literals: a JS number when exact, a BigInt (exact parse) beyond 2^53. */
function wireBigInt(value: unknown, what: string): bigint {
  if (typeof value === 'bigint') return value
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value)
  throw new Error(
    `${what}: ${typeof value === 'string' ? `the string ${JSON.stringify(value)}` : String(value)} is not a 64-bit integer literal`,
  )
}

interface GotTensor {
  readonly datatype: string
  readonly shape: unknown
  readonly data: readonly unknown[]
}

/** Every mismatch between a served output and the expected one, as readable lines. */
function compareOutput(
  got: GotTensor,
  exp: CaseTensor,
  tol: ConformanceCase['tolerance'],
): string[] {
  const where = `output '${exp.name}'`
  const problems: string[] = []
  if (got.datatype !== datatypeOf(exp.type))
    problems.push(
      `${where}: datatype ${JSON.stringify(got.datatype)}, expected ${datatypeOf(exp.type)}`,
    )
  if (JSON.stringify(got.shape) !== JSON.stringify(exp.dims))
    problems.push(
      `${where}: shape ${JSON.stringify(got.shape)}, expected ${JSON.stringify(exp.dims)}`,
    )
  if (got.data.length !== exp.data.length) {
    problems.push(`${where}: ${got.data.length} elements, expected ${exp.data.length}`)
    return problems
  }
  for (let i = 0; i < exp.data.length && problems.length < 5; i++) {
    const at = `${where}[${i}]`
    try {
      if (FLOATS.has(exp.type)) {
        const g = wireFloat(got.data[i], at)
        const e = wireFloat(exp.data[i], `manifest ${at}`)
        if (!floatMatches(g, e, tol)) problems.push(`${at}: got ${g}, expected ${e}`)
      } else if (BIG_INTS.has(exp.type)) {
        const g = wireBigInt(got.data[i], at)
        if (g !== BigInt(exp.data[i] as string))
          problems.push(`${at}: got ${g}, expected ${exp.data[i]}`)
      } else if (got.data[i] !== exp.data[i]) {
        problems.push(
          `${at}: got ${JSON.stringify(got.data[i])}, expected ${JSON.stringify(exp.data[i])}`,
        )
      }
    } catch (e) {
      problems.push((e as Error).message)
    }
  }
  return problems
}

/** The V2 request input of a manifest tensor, its data as JSON (64-bit ints as BigInt -> literals). */
function jsonInput(i: CaseTensor) {
  const data: Value[] = i.data.map((v) => (BIG_INTS.has(i.type) ? BigInt(v as string) : v))
  return { name: i.name, shape: i.dims, datatype: datatypeOf(i.type), data }
}

describe('ONNX node-test conformance through POST /v2/models/{case}/infer', () => {
  let t: TestServer
  const infer = (c: ConformanceCase) => `${t.url}/v2/models/${c.name}/infer`

  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeConformanceModels(dir)
    })
  }, 180_000)
  afterAll(() => t?.close())

  it('has the 64 cases the README describes', () => {
    expect(cases).toHaveLength(64)
  })

  it.each(cases)('$name (JSON tensors)', async (c) => {
    const r = await postJson(infer(c), { id: c.name, inputs: c.inputs.map(jsonInput) })
    expect(r.status, r.text).toBe(200)
    expect(r.headers['inference-header-content-length']).toBeUndefined()
    const { header } = splitResponse(r)
    expect(header).toMatchObject({ model_name: c.name, model_version: '1', id: c.name })
    expect(header.outputs.map((o) => o.name).sort()).toEqual(c.outputs.map((o) => o.name).sort())
    const problems = c.outputs.flatMap((exp) => {
      const out = header.outputs.find((o) => o.name === exp.name)!
      if (!Array.isArray(out.data)) return [`output '${exp.name}': no "data"`]
      return compareOutput(
        { datatype: out.datatype, shape: out.shape, data: flat(out.data) },
        exp,
        c.tolerance,
      )
    })
    expect(problems).toEqual([])
  })

  it.each(cases)('$name (binary inputs and outputs)', async (c) => {
    const sections = c.inputs.map((i) =>
      encodeBinary(
        datatypeOf(i.type),
        i.data.map((v) => element(i.type, v)),
      ),
    )
    const header = {
      inputs: c.inputs.map((i, k) => ({
        name: i.name,
        shape: i.dims,
        datatype: datatypeOf(i.type),
        parameters: { binary_data_size: sections[k]!.length },
      })),
      parameters: { binary_data_output: true },
    }
    // As Triton's client does: Inference-Header-Content-Length only when there is binary input data.
    const r =
      c.inputs.length > 0
        ? await postBinary(infer(c), header, sections)
        : await postJson(infer(c), header)
    expect(r.status, r.text).toBe(200)
    expect(r.headers['inference-header-content-length']).toMatch(/^\d+$/)
    const split = splitResponse(r)
    expect(split.header).toMatchObject({ model_name: c.name, model_version: '1' })
    expect(split.header.outputs.map((o) => o.name).sort()).toEqual(
      c.outputs.map((o) => o.name).sort(),
    )
    expect(split.binaryLength).toBe([...split.binary.values()].reduce((n, b) => n + b.length, 0))
    const problems = c.outputs.flatMap((exp) => {
      const out = split.header.outputs.find((o) => o.name === exp.name)!
      const bytes = split.binary.get(exp.name)
      if (bytes === undefined) return [`output '${exp.name}': not binary (${JSON.stringify(out)})`]
      if (out.data !== undefined) return [`output '${exp.name}': binary and "data" both`]
      let data: Element[]
      try {
        data = decodeBinary(datatypeOf(exp.type), bytes)
      } catch (e) {
        return [`output '${exp.name}': ${(e as Error).message}`]
      }
      return compareOutput({ datatype: out.datatype, shape: out.shape, data }, exp, c.tolerance)
    })
    expect(problems).toEqual([])
  })
})

describe('the V2 conformance comparison itself', () => {
  const tol = { rtol: 1e-3, atol: 1e-5 }
  const tensor = (type: string, data: Json[], dims = [data.length]): CaseTensor => ({
    name: 'y',
    type,
    dims,
    data,
  })

  it('fails on a float outside the tolerance, a NaN against a number, a wrong shape or datatype', () => {
    expect(
      compareOutput({ datatype: 'FP32', shape: [1], data: [1.01] }, tensor('float32', [1]), tol),
    ).toHaveLength(1)
    expect(
      compareOutput({ datatype: 'FP32', shape: [1], data: ['NaN'] }, tensor('float32', [1]), tol),
    ).toHaveLength(1)
    expect(
      compareOutput({ datatype: 'FP32', shape: [1, 1], data: [1] }, tensor('float32', [1]), tol),
    ).toHaveLength(1)
    expect(
      compareOutput({ datatype: 'FP64', shape: [1], data: [1] }, tensor('float32', [1]), tol),
    ).toHaveLength(1)
    expect(
      compareOutput(
        { datatype: 'FP32', shape: [2], data: ['NaN', Infinity] },
        tensor('float32', ['NaN', 'Infinity']),
        tol,
      ),
    ).toEqual([])
  })

  it('takes INT64 as number literals (numbers or BigInt), never strings', () => {
    const big = '9223372036854775807'
    expect(
      compareOutput(
        { datatype: 'INT64', shape: [2], data: [5, BigInt(big)] },
        tensor('int64', ['5', big]),
        tol,
      ),
    ).toEqual([])
    expect(
      compareOutput({ datatype: 'INT64', shape: [1], data: ['5'] }, tensor('int64', ['5']), tol),
    ).toHaveLength(1)
    expect(
      compareOutput({ datatype: 'INT64', shape: [1], data: [big] }, tensor('int64', [big]), tol),
    ).toHaveLength(1)
    expect(
      compareOutput({ datatype: 'UINT8', shape: [1], data: [3] }, tensor('uint8', [4]), tol),
    ).toHaveLength(1)
  })
})
