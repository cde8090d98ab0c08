import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  binaryExampleModel,
  identityModel,
  typedIdentitiesModel,
  writeVersion,
} from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import {
  BIG_SAMPLES,
  decodeBinary,
  encodeBinary,
  flat,
  float16Bits,
  float16Value,
  http,
  jsonElement,
  mismatches,
  ONNX_OF_V2,
  postBinary,
  postJson,
  SAMPLES,
  splitResponse,
  V2_DATATYPES,
  v2Error,
  type Element,
  type RawResponse,
  type V2Datatype,
} from './v2-support.js'

/**
 * Triton's binary tensor data extension, both directions, against the real server.
 * https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
 * - binary data: "little-endian byte order, row major, without stride or padding between elements";
 *   BOOL "a single byte with value 1 ... 0"; BYTES "a 4-byte unsigned integer giving the length
 *   followed by the actual bytes".
 * - "binary_data_size" (input and response output), "binary_data" (requested output),
 *   "binary_data_output" (whole request; a per-output "binary_data" overrides it).
 * - body = JSON object, then the binary data "in the same order as the order of the input or output
 *   tensors are specified in the JSON"; "Inference-Header-Content-Length" gives the JSON length and
 *   Content-Length the full body.
 */

let t: TestServer
const infer = (model: string) => `${t.url}/v2/models/${model}/infer`
const idModel = (dt: V2Datatype) => `id_${dt}`

/** The mixed model: one identity per datatype family, names a..f -> ya..yf. */
const MIXED = [
  { input: 'a', output: 'ya', dt: 'UINT32' },
  { input: 'b', output: 'yb', dt: 'BOOL' },
  { input: 'c', output: 'yc', dt: 'BYTES' },
  { input: 'd', output: 'yd', dt: 'FP16' },
  { input: 'e', output: 'ye', dt: 'INT64' },
  { input: 'f', output: 'yf', dt: 'FP64' },
] as const satisfies readonly { input: string; output: string; dt: V2Datatype }[]

beforeAll(async () => {
  t = await startTestServer(async (dir) => {
    for (const dt of V2_DATATYPES)
      await writeVersion(dir, idModel(dt), 1, identityModel(ONNX_OF_V2[dt], ['batch', 3]))
    await writeVersion(dir, 'example', 1, binaryExampleModel())
    await writeVersion(
      dir,
      'mixed',
      1,
      typedIdentitiesModel(
        MIXED.map((m) => ({ input: m.input, output: m.output, type: ONNX_OF_V2[m.dt] })),
      ),
    )
  })
}, 120_000)
afterAll(() => t?.close())

function expectV2Error(r: RawResponse, status = 400): string {
  expect(r.status, r.text).toBe(status)
  expect(r.headers['content-type']).toMatch(/^application\/json/)
  return v2Error(r)
}

/** A response with binary data: the headers the extension asks for, and a body they describe. */
function expectBinaryResponse(r: RawResponse) {
  expect(r.status, r.text).toBe(200)
  const headerLength = r.headers['inference-header-content-length']
  expect(headerLength, 'Inference-Header-Content-Length').toMatch(/^\d+$/)
  expect(Number(headerLength)).toBeLessThanOrEqual(r.body.length)
  // "Content-Length continues to give the full body length" (no Content-Encoding was asked for).
  expect(r.headers['content-encoding']).toBeUndefined()
  expect(Number(r.headers['content-length'])).toBe(r.body.length)
  const split = splitResponse(r)
  const declared = split.header.outputs.reduce(
    (n, o) =>
      n + (typeof o.parameters?.binary_data_size === 'number' ? o.parameters.binary_data_size : 0),
    0,
  )
  expect(split.binaryLength, 'the binary part is exactly the binary_data_size of the outputs').toBe(
    declared,
  )
  return split
}

/** Values that only binary can carry exactly, or that JSON writes differently: beyond 2^53, NaN, ±Infinity. */
const EDGE_SAMPLES: Partial<Record<V2Datatype, readonly Element[]>> = {
  ...BIG_SAMPLES,
  FP16: [NaN, Infinity, -Infinity, float16Value(0x3555), -65504, float16Value(0x03ff)],
  FP32: [NaN, Infinity, -Infinity, Math.fround(0.1), -3.4028234663852886e38, Math.fround(1e-40)],
  FP64: [NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE, 0.1 + 0.2],
  BYTES: ['tab\there', 'x'.repeat(300), '€', 'a\nb', '', '🎉🎉'],
}

describe('binary inputs, every datatype (request: parameters.binary_data_size, Inference-Header-Content-Length)', () => {
  it.each(V2_DATATYPES)('%s: binary in, JSON out', async (dt) => {
    const bytes = encodeBinary(dt, SAMPLES[dt])
    const r = await postBinary(
      infer(idModel(dt)),
      {
        id: `bin-${dt}`,
        inputs: [
          {
            name: 'x',
            shape: [2, 3],
            datatype: dt,
            parameters: { binary_data_size: bytes.length },
          },
        ],
      },
      [bytes],
    )
    expect(r.status, r.text).toBe(200)
    expect(r.headers['inference-header-content-length']).toBeUndefined()
    const { header } = splitResponse(r)
    expect(header).toMatchObject({ model_name: idModel(dt), model_version: '1', id: `bin-${dt}` })
    expect(header.outputs[0]).toMatchObject({ name: 'y', datatype: dt, shape: [2, 3] })
    expect(mismatches(dt, flat(header.outputs[0]!.data), SAMPLES[dt])).toEqual([])
  })

  it('binary sizes follow the datatype table: BOOL 1 byte, FP16 2, INT64 8, BYTES 4 + length', () => {
    expect(encodeBinary('BOOL', [true, false, true])).toEqual(Buffer.from([1, 0, 1]))
    expect(encodeBinary('FP16', [1, -2])).toEqual(Buffer.from([0x00, 0x3c, 0x00, 0xc0]))
    expect(encodeBinary('INT64', [-2n])).toEqual(
      Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    )
    expect(encodeBinary('UINT32', [1])).toEqual(Buffer.from([1, 0, 0, 0]))
    expect(encodeBinary('BYTES', ['ab', ''])).toEqual(
      Buffer.from([2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0]),
    )
    expect(float16Bits(65504)).toBe(0x7bff)
    expect(float16Bits(2 ** -24)).toBe(0x0001)
    expect(float16Bits(0.1)).toBe(0x2e66)
    expect(float16Bits(65520)).toBe(0x7c00)
    expect(float16Value(0x2e66)).toBe(0.0999755859375)
  })
})

describe('binary outputs, every datatype', () => {
  // $request_output parameters.binary_data: true -> $response_output parameters.binary_data_size, no "data".
  it.each(V2_DATATYPES)(
    '%s: JSON in, binary out asked for per output ("binary_data": true)',
    async (dt) => {
      const r = await postJson(infer(idModel(dt)), {
        inputs: [{ name: 'x', shape: [2, 3], datatype: dt, data: SAMPLES[dt].map(jsonElement) }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      })
      const { header, binary } = expectBinaryResponse(r)
      expect(r.headers['content-type']).toBe('application/octet-stream')
      const out = header.outputs[0]!
      expect(out).toMatchObject({ name: 'y', datatype: dt, shape: [2, 3] })
      expect(out.data).toBeUndefined()
      const expected = encodeBinary(dt, SAMPLES[dt])
      expect(out.parameters?.binary_data_size).toBe(expected.length)
      expect(binary.get('y')).toEqual(expected)
      expect(mismatches(dt, decodeBinary(dt, binary.get('y')!), SAMPLES[dt])).toEqual([])
    },
  )

  // $inference_request parameters.binary_data_output: true -> every output binary.
  it.each(V2_DATATYPES)(
    '%s: binary in, binary out for the whole request ("binary_data_output": true), byte for byte',
    async (dt) => {
      const values = EDGE_SAMPLES[dt] ?? SAMPLES[dt]
      const bytes = encodeBinary(dt, values)
      const r = await postBinary(
        infer(idModel(dt)),
        {
          inputs: [
            {
              name: 'x',
              shape: [2, 3],
              datatype: dt,
              parameters: { binary_data_size: bytes.length },
            },
          ],
          parameters: { binary_data_output: true },
        },
        [bytes],
      )
      const { header, binary } = expectBinaryResponse(r)
      expect(header.outputs).toHaveLength(1)
      expect(header.outputs[0]).toMatchObject({
        name: 'y',
        datatype: dt,
        shape: [2, 3],
        parameters: { binary_data_size: bytes.length },
      })
      expect(header.outputs[0]!.data).toBeUndefined()
      expect(binary.get('y')).toEqual(bytes)
      expect(mismatches(dt, decodeBinary(dt, binary.get('y')!), values)).toEqual([])
    },
  )

  it.each(V2_DATATYPES)('%s: an empty tensor [0, 3] both ways (binary_data_size 0)', async (dt) => {
    const r = await postBinary(
      infer(idModel(dt)),
      {
        inputs: [{ name: 'x', shape: [0, 3], datatype: dt, parameters: { binary_data_size: 0 } }],
        parameters: { binary_data_output: true },
      },
      [Buffer.alloc(0)],
    )
    const { header, binary } = expectBinaryResponse(r)
    expect(header.outputs[0]).toMatchObject({
      name: 'y',
      datatype: dt,
      shape: [0, 3],
      parameters: { binary_data_size: 0 },
    })
    expect(binary.get('y')).toEqual(Buffer.alloc(0))
  })
})

describe('the extension document example, request for request', () => {
  // "input0" UINT32 [2, 2] (16 bytes) and "input1" BOOL [3] (3 bytes): 19 bytes of binary data;
  // "output0" asked for as binary; a [3, 2] FP32 answer is 24 bytes.
  it('answers output0 as 24 bytes after the JSON, with the lengths in the headers', async () => {
    const header = `{
  "model_name" : "example",
  "inputs" : [
    {
      "name" : "input0",
      "shape" : [ 2, 2 ],
      "datatype" : "UINT32",
      "parameters" : {
        "binary_data_size" : 16
      }
    },
    {
      "name" : "input1",
      "shape" : [ 3 ],
      "datatype" : "BOOL",
      "parameters" : {
        "binary_data_size" : 3
      }
    }
  ],
  "outputs" : [
    {
      "name" : "output0",
      "parameters" : {
        "binary_data" : true
      }
    }
  ]
}`
    const input0 = encodeBinary('UINT32', [1, 2, 3, 4])
    const input1 = encodeBinary('BOOL', [true, false, true])
    expect(input0.length + input1.length).toBe(19)
    const r = await postBinary(infer('example'), header, [input0, input1])
    const split = expectBinaryResponse(r)
    expect(r.headers['content-type']).toBe('application/octet-stream')
    expect(Number(r.headers['content-length'])).toBe(
      Number(r.headers['inference-header-content-length']) + 24,
    )
    expect(split.header.outputs).toEqual([
      { name: 'output0', shape: [3, 2], datatype: 'FP32', parameters: { binary_data_size: 24 } },
    ])
    expect(decodeBinary('FP32', split.binary.get('output0')!)).toEqual([1, 2, 3, 4, 1, 0])
  })
})

describe('mixed JSON and binary tensors in one request', () => {
  const values: Record<string, readonly Element[]> = {
    a: [7, 4294967295],
    b: [false, true, true],
    c: ['x', '', 'ünïcode'],
    d: [0.5, -0, 65504, 1],
    e: [9223372036854775807n, -1n],
    f: [Math.PI],
  }
  const dtOf = Object.fromEntries(MIXED.map((m) => [m.input, m.dt])) as Record<string, V2Datatype>

  function input(name: string, binary: boolean) {
    const dt = dtOf[name]!
    const shape = [values[name]!.length]
    if (!binary)
      return {
        json: { name, shape, datatype: dt, data: values[name]!.map(jsonElement) },
        bytes: undefined,
      }
    const bytes = encodeBinary(dt, values[name]!)
    return {
      json: { name, shape, datatype: dt, parameters: { binary_data_size: bytes.length } },
      bytes,
    }
  }

  it('binary sections are read in the order the inputs are listed in the JSON, skipping JSON inputs', async () => {
    // Not the graph's order, and JSON inputs between binary ones. e (INT64 beyond 2^53) goes as JSON
    // with exact literals, so the header is written by toJsonText (BigInt -> literal).
    const order: [string, boolean][] = [
      ['f', true],
      ['b', false],
      ['c', true],
      ['a', true],
      ['e', false],
      ['d', true],
    ]
    const parts = order.map(([name, binary]) => input(name, binary))
    const r = await postBinary(
      infer('mixed'),
      { inputs: parts.map((p) => p.json), parameters: { binary_data_output: true } },
      parts.flatMap((p) => (p.bytes ? [p.bytes] : [])),
    )
    const { header, binary } = expectBinaryResponse(r)
    expect(header.outputs.map((o) => o.name).sort()).toEqual(['ya', 'yb', 'yc', 'yd', 'ye', 'yf'])
    for (const m of MIXED) {
      const out = header.outputs.find((o) => o.name === m.output)!
      expect(out, m.output).toMatchObject({ datatype: m.dt, shape: [values[m.input]!.length] })
      const bytes = binary.get(m.output)
      expect(bytes, `${m.output} is binary`).toBeDefined()
      expect(mismatches(m.dt, decodeBinary(m.dt, bytes!), values[m.input]!), m.output).toEqual([])
    }
  })

  it('"binary_data" on an output overrides "binary_data_output", either way; binary sections follow the output order', async () => {
    const parts = MIXED.map((m, i) => input(m.input, i % 2 === 0))
    const r = await postBinary(
      infer('mixed'),
      {
        inputs: parts.map((p) => p.json),
        parameters: { binary_data_output: true },
        outputs: [
          { name: 'yf' },
          { name: 'yb', parameters: { binary_data: false } },
          { name: 'yc' },
          { name: 'ya', parameters: { binary_data: true } },
          { name: 'ye', parameters: { binary_data: false } },
          { name: 'yd' },
        ],
      },
      parts.flatMap((p) => (p.bytes ? [p.bytes] : [])),
    )
    const { header, binary } = expectBinaryResponse(r)
    const asJson = header.outputs
      .filter((o) => o.parameters?.binary_data_size === undefined)
      .map((o) => o.name)
    expect(asJson.sort()).toEqual(['yb', 'ye'])
    expect([...binary.keys()].sort()).toEqual(['ya', 'yc', 'yd', 'yf'])
    for (const m of MIXED) {
      const out = header.outputs.find((o) => o.name === m.output)!
      const got = binary.has(m.output) ? decodeBinary(m.dt, binary.get(m.output)!) : flat(out.data)
      if (!binary.has(m.output)) expect(out.data, `${m.output} has JSON data`).toBeDefined()
      else expect(out.data, `${m.output} has no JSON data`).toBeUndefined()
      expect(mismatches(m.dt, got, values[m.input]!), m.output).toEqual([])
    }
  })

  it('"binary_data_output": false with one output asked for as binary', async () => {
    const parts = MIXED.map((m) => input(m.input, false))
    const r = await postJson(infer('mixed'), {
      inputs: parts.map((p) => p.json),
      parameters: { binary_data_output: false },
      outputs: [{ name: 'yc', parameters: { binary_data: true } }, { name: 'ya' }],
    })
    const { header, binary } = expectBinaryResponse(r)
    expect([...binary.keys()]).toEqual(['yc'])
    expect(decodeBinary('BYTES', binary.get('yc')!)).toEqual(values.c)
    expect(flat(header.outputs.find((o) => o.name === 'ya')!.data)).toEqual(values.a)
  })

  it('a request whose outputs are all JSON has no Inference-Header-Content-Length in its answer', async () => {
    const parts = MIXED.map((m) => input(m.input, true))
    const r = await postBinary(
      infer('mixed'),
      { inputs: parts.map((p) => p.json) },
      parts.map((p) => p.bytes!),
    )
    expect(r.status, r.text).toBe(200)
    expect(r.headers['inference-header-content-length']).toBeUndefined()
    const { header } = splitResponse(r)
    for (const m of MIXED)
      expect(
        mismatches(
          m.dt,
          flat(header.outputs.find((o) => o.name === m.output)!.data),
          values[m.input]!,
        ),
        m.output,
      ).toEqual([])
  })
})

// "Tensor Data Types": BYTES is "Variable (max 2^32)" bytes; the extension carries each element as
// a length and "the actual bytes". Bytes are not text: a server that cannot carry some bytes must
// refuse them, never answer with other bytes.
describe('BYTES elements are bytes: carried exactly or refused, never changed', () => {
  const bytesElement = (content: Buffer) => {
    const length = Buffer.alloc(4)
    length.writeUInt32LE(content.length)
    return Buffer.concat([length, content])
  }

  async function roundTrip(content: Buffer): Promise<RawResponse> {
    const section = Buffer.concat([
      bytesElement(Buffer.from('ok')),
      bytesElement(content),
      bytesElement(Buffer.from('ok')),
    ])
    return postBinary(
      infer('id_BYTES'),
      {
        inputs: [
          {
            name: 'x',
            shape: [1, 3],
            datatype: 'BYTES',
            parameters: { binary_data_size: section.length },
          },
        ],
        parameters: { binary_data_output: true },
      },
      [section],
    )
  }

  function expectExactOrRefused(r: RawResponse, content: Buffer) {
    if (r.status === 400) {
      v2Error(r)
      return
    }
    const { binary } = expectBinaryResponse(r)
    const expected = Buffer.concat([
      bytesElement(Buffer.from('ok')),
      bytesElement(content),
      bytesElement(Buffer.from('ok')),
    ])
    expect(binary.get('y')?.toString('hex'), 'the element came back changed').toBe(
      expected.toString('hex'),
    )
  }

  it('an element holding a NUL byte ("a\\0b")', async () => {
    const content = Buffer.from([0x61, 0x00, 0x62])
    expectExactOrRefused(await roundTrip(content), content)
  })

  it('an element of bytes that are not UTF-8 (0xff 0xfe, a lone 0xc3)', async () => {
    for (const content of [Buffer.from([0xff, 0xfe]), Buffer.from([0xc3])])
      expectExactOrRefused(await roundTrip(content), content)
  })

  it('a JSON string element holding U+0000', async () => {
    const r = await postJson(infer('id_BYTES'), {
      inputs: [{ name: 'x', shape: [1, 3], datatype: 'BYTES', data: ['ok', 'a\u0000b', 'ok'] }],
      outputs: [{ name: 'y', parameters: { binary_data: true } }],
    })
    expectExactOrRefused(r, Buffer.from('a\u0000b'))
  })
})

describe('malformed binary requests are 400 errors', () => {
  const fp32 = encodeBinary('FP32', [1, 2, 3, 4, 5, 6]) // 24 bytes
  const fp32Header = (size: number) => ({
    inputs: [
      { name: 'x', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: size } },
    ],
  })

  it('binary_data_size past the end of the body', async () => {
    expectV2Error(await postBinary(infer('id_FP32'), fp32Header(24), [fp32.subarray(0, 20)]))
    expectV2Error(await postBinary(infer('id_FP32'), fp32Header(1000), [fp32]))
  })

  it('bytes left over after every binary_data_size', async () => {
    expectV2Error(
      await postBinary(infer('id_FP32'), fp32Header(24), [fp32, Buffer.from([0, 0, 0, 0])]),
    )
  })

  it('binary_data_size that is not what the shape and datatype need', async () => {
    expectV2Error(await postBinary(infer('id_FP32'), fp32Header(20), [fp32.subarray(0, 20)]))
    expectV2Error(await postBinary(infer('id_FP32'), fp32Header(28), [fp32, Buffer.alloc(4)]))
  })

  it('a binary_data_size that is not a byte count', async () => {
    for (const size of [-4, 2.5, '24', null]) {
      const header = {
        inputs: [
          { name: 'x', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: size } },
        ],
      }
      expectV2Error(await postBinary(infer('id_FP32'), header, [fp32]))
    }
  })

  it('Inference-Header-Content-Length larger than the body, or not a length', async () => {
    const json = Buffer.from(JSON.stringify(fp32Header(24)))
    const body = Buffer.concat([json, fp32])
    for (const length of [body.length + 1, body.length + 1000, -1, 'abc', '12abc', '']) {
      const r = await http('POST', infer('id_FP32'), {
        body,
        headers: {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': String(length),
        },
      })
      expectV2Error(r)
    }
  })

  it('Inference-Header-Content-Length that cuts the JSON short', async () => {
    const json = Buffer.from(JSON.stringify(fp32Header(24)))
    const r = await http('POST', infer('id_FP32'), {
      body: Buffer.concat([json, fp32]),
      headers: { 'inference-header-content-length': String(json.length - 3) },
    })
    expectV2Error(r)
  })

  it('binary_data_size without Inference-Header-Content-Length (the extension says it "must be provided")', async () => {
    const json = Buffer.from(JSON.stringify(fp32Header(24)))
    expectV2Error(
      await http('POST', infer('id_FP32'), {
        body: Buffer.concat([json, fp32]),
        headers: { 'content-type': 'application/octet-stream' },
      }),
    )
  })

  it('a BYTES element whose length goes past the end', async () => {
    const good = encodeBinary('BYTES', ['a', 'b'])
    const liar = Buffer.alloc(4)
    liar.writeUInt32LE(100)
    const bytes = Buffer.concat([good, liar, Buffer.from('c')])
    const header = {
      inputs: [
        {
          name: 'x',
          shape: [1, 3],
          datatype: 'BYTES',
          parameters: { binary_data_size: bytes.length },
        },
      ],
    }
    expectV2Error(await postBinary(infer('id_BYTES'), header, [bytes]))
  })

  it('BYTES data that ends inside a 4-byte length, or holds more elements than the shape', async () => {
    const cut = Buffer.concat([encodeBinary('BYTES', ['a', 'b']), Buffer.from([1, 0])])
    const header = (n: number) => ({
      inputs: [
        { name: 'x', shape: [1, 3], datatype: 'BYTES', parameters: { binary_data_size: n } },
      ],
    })
    expectV2Error(await postBinary(infer('id_BYTES'), header(cut.length), [cut]))
    const extra = encodeBinary('BYTES', ['a', 'b', 'c', 'd'])
    expectV2Error(await postBinary(infer('id_BYTES'), header(extra.length), [extra]))
  })

  // $request_input "shape": "Each dimension must be an integer representable as an unsigned 64-bit
  // integer value" — so a shape can claim far more elements than the body holds.
  it('a shape claiming 2^32 or more elements with a few bytes of data (every datatype): 400, never 500', async () => {
    for (const dt of V2_DATATYPES) {
      for (const shape of [
        [2 ** 32, 1],
        [2 ** 20, 2 ** 20],
      ]) {
        const bytes = encodeBinary(dt, SAMPLES[dt].slice(0, 1))
        const header = {
          inputs: [
            { name: 'x', shape, datatype: dt, parameters: { binary_data_size: bytes.length } },
          ],
        }
        const r = await postBinary(infer(idModel(dt)), header, [bytes])
        expect(r.status, `${dt} ${JSON.stringify(shape)}: ${r.text}`).toBe(400)
        v2Error(r)
      }
    }
  })

  it('the server serves on after every malformed request', async () => {
    const r = await postBinary(
      infer('id_FP32'),
      { ...fp32Header(24), parameters: { binary_data_output: true } },
      [fp32],
    )
    const { binary } = expectBinaryResponse(r)
    expect(binary.get('y')).toEqual(fp32)
  })
})

describe('empty tensors (a 0 dim) keep their shape, in binary and JSON', () => {
  it.each(V2_DATATYPES)('%s: [0, 3] binary in (0 bytes), binary and JSON out', async (dt) => {
    const header = {
      inputs: [{ name: 'x', shape: [0, 3], datatype: dt, parameters: { binary_data_size: 0 } }],
      parameters: { binary_data_output: true },
    }
    const { header: out, binary } = expectBinaryResponse(
      await postBinary(infer(idModel(dt)), header, [Buffer.alloc(0)]),
    )
    expect(out.outputs).toEqual([
      { name: 'y', datatype: dt, shape: [0, 3], parameters: { binary_data_size: 0 } },
    ])
    expect(binary.get('y')).toEqual(Buffer.alloc(0))
    const json = await postJson(infer(idModel(dt)), {
      inputs: [{ name: 'x', shape: [0, 3], datatype: dt, data: [] }],
    })
    expect(json.status, json.text).toBe(200)
    expect(JSON.parse(json.text).outputs).toEqual([
      { name: 'y', datatype: dt, shape: [0, 3], data: [] },
    ])
  })
})
