import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { identityModel, simpleAddSubModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import {
  decodeBinary,
  encodeBinary,
  flat,
  get,
  http,
  type RawResponse,
  splitResponse,
} from './v2-support.js'

/**
 * A session of Triton's Python HTTP client (tritonclient.http), request for request, without the
 * client: it is not installed and nothing may be fetched. What it sends is taken from its source
 * (triton-inference-server/client, src/python/library/tritonclient/http/_client.py, _utils.py,
 * _infer_input.py, _requested_output.py, _infer_result.py):
 * - JSON is rapidjson.dumps (compact); no Content-Type header; binary inputs by default
 *   (InferInput.set_data_from_numpy(binary_data=True)), "binary_data_size" in their parameters and
 *   Inference-Header-Content-Length = the JSON's length;
 * - InferRequestedOutput(name, binary_data=True) sends {"name", "parameters": {"binary_data": ...}};
 *   with no outputs the request gets "parameters": {"binary_data_output": true};
 * - InferResult reads Inference-Header-Content-Length, JSON-parses that many bytes, then finds each
 *   output's bytes by "binary_data_size" in output order; a Content-Encoding is undone first;
 * - any status but 200 is an error whose message is json.loads(body)["error"];
 * - is_*_live/ready are `status == 200`; the repository index is POSTed with an empty body, load
 *   with "{}", unload with {"parameters": {"unload_dependents": false}}.
 * The model is the "simple" model of Triton's examples (INPUT0 + INPUT1, INPUT0 - INPUT1, int32 [batch, 16]).
 */

let t: TestServer
const url = (path: string) => `${t.url}/${path}`

beforeAll(async () => {
  t = await startTestServer(async (dir) => {
    await writeVersion(dir, 'simple', 1, simpleAddSubModel())
    await writeVersion(dir, 'simple_identity', 1, identityModel('string', ['batch', 1]))
  })
}, 120_000)
afterAll(() => t?.close())

/** rapidjson.dumps: compact separators, like JSON.stringify. */
const dumps = (value: unknown) => JSON.stringify(value)

/** tritonclient.http InferenceServerClient.infer: body and headers as _get_inference_request builds them. */
function clientInfer(
  model: string,
  inputs: { name: string; shape: number[]; datatype: string; raw?: Buffer; data?: unknown[] }[],
  o: {
    outputs?: { name: string; binary_data?: boolean }[]
    requestId?: string
    requestGzip?: boolean
    responseGzip?: boolean
    version?: string
  } = {},
): Promise<RawResponse> {
  const request: Record<string, unknown> = {}
  const parameters: Record<string, unknown> = {}
  if (o.requestId) request.id = o.requestId
  request.inputs = inputs.map((i) => {
    const tensor: Record<string, unknown> = { name: i.name, shape: i.shape, datatype: i.datatype }
    if (i.raw) tensor.parameters = { binary_data_size: i.raw.length }
    else tensor.data = i.data
    return tensor
  })
  if (o.outputs)
    request.outputs = o.outputs.map((out) => ({
      name: out.name,
      parameters: { binary_data: out.binary_data ?? true },
    }))
  else parameters.binary_data_output = true
  if (Object.keys(parameters).length > 0) request.parameters = parameters
  const json = Buffer.from(dumps(request))
  const raws = inputs.flatMap((i) => (i.raw ? [i.raw] : []))
  let body = raws.length === 0 ? json : Buffer.concat([json, ...raws])
  const headers: Record<string, string> = {}
  if (o.requestGzip) {
    headers['Content-Encoding'] = 'gzip'
    body = gzipSync(body)
  }
  if (o.responseGzip) headers['Accept-Encoding'] = 'gzip'
  if (raws.length > 0) headers['Inference-Header-Content-Length'] = String(json.length)
  const path = o.version
    ? `v2/models/${encodeURIComponent(model)}/versions/${o.version}/infer`
    : `v2/models/${encodeURIComponent(model)}/infer`
  return http('POST', url(path), { body, headers })
}

/** tritonclient's _raise_if_error: non-200 -> InferenceServerException(json.loads(body)["error"]). */
function raiseIfError(r: RawResponse): void {
  if (r.status !== 200)
    throw new Error(
      `InferenceServerException [${r.status}]: ${(JSON.parse(r.text) as { error: string }).error}`,
    )
}

/** InferResult.as_numpy, for the datatypes used here. */
function asArray(r: RawResponse, name: string): { shape: number[]; data: unknown[] } | undefined {
  const { header, binary } = splitResponse(r)
  const out = header.outputs.find((o) => o.name === name)
  if (!out) return undefined
  const bytes = binary.get(name)
  const data =
    bytes !== undefined ? decodeBinary(out.datatype as 'INT32' | 'BYTES', bytes) : flat(out.data)
  return { shape: out.shape, data }
}

const input0 = Int32Array.from({ length: 16 }, (_, i) => i)
const input1 = Int32Array.from({ length: 16 }, () => 1)
const sum = [...input0].map((v, i) => v + input1[i]!)
const diff = [...input0].map((v, i) => v - input1[i]!)
const raw = (a: Int32Array) => encodeBinary('INT32', [...a])

// Spec: KServe V2 "Health", "Server Metadata", "Model Metadata", "Inference"; Triton binary tensor
// data extension; model repository and statistics extensions — as one client session uses them.
describe('a tritonclient.http session against modelgate', () => {
  it('is_server_live, is_server_ready, is_model_ready: status 200', async () => {
    expect((await get(url('v2/health/live'))).status).toBe(200)
    expect((await get(url('v2/health/ready'))).status).toBe(200)
    expect((await get(url('v2/models/simple/ready'))).status).toBe(200)
    expect((await get(url('v2/models/simple/versions/1/ready'))).status).toBe(200)
  })

  it('get_server_metadata and get_model_metadata', async () => {
    const server = await get(url('v2'))
    raiseIfError(server)
    expect(JSON.parse(server.text).extensions).toContain('binary_tensor_data')
    const model = await get(url('v2/models/simple'))
    raiseIfError(model)
    const metadata = JSON.parse(model.text)
    expect(metadata.name).toBe('simple')
    expect(metadata.inputs).toEqual([
      { name: 'INPUT0', datatype: 'INT32', shape: [-1, 16] },
      { name: 'INPUT1', datatype: 'INT32', shape: [-1, 16] },
    ])
    expect(metadata.outputs).toEqual([
      { name: 'OUTPUT0', datatype: 'INT32', shape: [-1, 16] },
      { name: 'OUTPUT1', datatype: 'INT32', shape: [-1, 16] },
    ])
  })

  it('simple_http_infer_client: binary inputs, OUTPUT0 binary and OUTPUT1 JSON', async () => {
    const r = await clientInfer(
      'simple',
      [
        { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', raw: raw(input0) },
        { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', raw: raw(input1) },
      ],
      {
        outputs: [
          { name: 'OUTPUT0', binary_data: true },
          { name: 'OUTPUT1', binary_data: false },
        ],
      },
    )
    raiseIfError(r)
    expect(r.headers['inference-header-content-length']).toBeDefined()
    expect(asArray(r, 'OUTPUT0')).toEqual({ shape: [1, 16], data: sum })
    expect(asArray(r, 'OUTPUT1')).toEqual({ shape: [1, 16], data: diff })
    expect(splitResponse(r).header).toMatchObject({ model_name: 'simple', model_version: '1' })
  })

  it('no outputs named: "binary_data_output": true, every output binary', async () => {
    const r = await clientInfer('simple', [
      { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', raw: raw(input0) },
      { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', raw: raw(input1) },
    ])
    raiseIfError(r)
    const { binary } = splitResponse(r)
    expect([...binary.keys()].sort()).toEqual(['OUTPUT0', 'OUTPUT1'])
    expect(asArray(r, 'OUTPUT0')!.data).toEqual(sum)
    expect(asArray(r, 'OUTPUT1')!.data).toEqual(diff)
  })

  it('set_data_from_numpy(binary_data=False), a request id and a model version', async () => {
    const r = await clientInfer(
      'simple',
      [
        { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: [...input0] },
        { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', data: [...input1] },
      ],
      {
        outputs: [
          { name: 'OUTPUT0', binary_data: false },
          { name: 'OUTPUT1', binary_data: false },
        ],
        requestId: '1',
        version: '1',
      },
    )
    raiseIfError(r)
    expect(r.headers['inference-header-content-length']).toBeUndefined()
    expect(splitResponse(r).header.id).toBe('1')
    expect(asArray(r, 'OUTPUT0')!.data).toEqual(sum)
  })

  it('a batch of 3 in one request', async () => {
    const a = Int32Array.from({ length: 48 }, (_, i) => i * 3)
    const b = Int32Array.from({ length: 48 }, (_, i) => -i)
    const r = await clientInfer('simple', [
      { name: 'INPUT0', shape: [3, 16], datatype: 'INT32', raw: raw(a) },
      { name: 'INPUT1', shape: [3, 16], datatype: 'INT32', raw: raw(b) },
    ])
    raiseIfError(r)
    expect(asArray(r, 'OUTPUT0')).toEqual({ shape: [3, 16], data: [...a].map((v, i) => v + b[i]!) })
  })

  it('simple_http_string_infer_client style: BYTES in and out as binary', async () => {
    const strings = ['1', 'two', 'drei 3', '']
    const r = await clientInfer('simple_identity', [
      { name: 'x', shape: [4, 1], datatype: 'BYTES', raw: encodeBinary('BYTES', strings) },
    ])
    raiseIfError(r)
    expect(asArray(r, 'y')).toEqual({ shape: [4, 1], data: strings })
  })

  it('request_compression_algorithm="gzip": Inference-Header-Content-Length counts the uncompressed JSON', async () => {
    const r = await clientInfer(
      'simple',
      [
        { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', raw: raw(input0) },
        { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', raw: raw(input1) },
      ],
      { requestGzip: true },
    )
    raiseIfError(r)
    expect(asArray(r, 'OUTPUT0')!.data).toEqual(sum)
  })

  it('response_compression_algorithm="gzip": the client gunzips, then splits at Inference-Header-Content-Length', async () => {
    // Large enough that a server compresses it.
    const n = 64
    const a = Int32Array.from({ length: n * 16 }, (_, i) => i)
    const r = await clientInfer(
      'simple',
      [
        { name: 'INPUT0', shape: [n, 16], datatype: 'INT32', raw: raw(a) },
        { name: 'INPUT1', shape: [n, 16], datatype: 'INT32', raw: raw(a) },
      ],
      { responseGzip: true },
    )
    raiseIfError(r)
    // The server did compress it: gzip bytes on the wire, smaller than what they decode to.
    expect(r.headers['content-encoding']).toBe('gzip')
    expect([...r.raw.subarray(0, 2)]).toEqual([0x1f, 0x8b])
    expect(r.raw.length).toBeLessThan(r.body.length)
    // http() undid the Content-Encoding, as InferResult does before reading the header, which
    // counts bytes of the decoded body.
    expect(Number(r.headers['inference-header-content-length'])).toBeLessThan(r.body.length)
    expect(asArray(r, 'OUTPUT0')!.data).toEqual([...a].map((v) => 2 * v))
    expect(asArray(r, 'OUTPUT1')!.data).toEqual([...a].map(() => 0))
  })

  it('errors come back as InferenceServerException(json.loads(body)["error"])', async () => {
    const missing = await clientInfer('no_such_model', [
      { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', raw: raw(input0) },
    ])
    expect(() => raiseIfError(missing)).toThrow(/InferenceServerException \[404\]: .+/)
    const wrongType = await clientInfer('simple', [
      { name: 'INPUT0', shape: [1, 16], datatype: 'FP32', raw: raw(input0) },
      { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', raw: raw(input1) },
    ])
    expect(() => raiseIfError(wrongType)).toThrow(/InferenceServerException \[400\]: .+/)
  })

  it('get_inference_statistics(model_name="simple")', async () => {
    const r = await get(url('v2/models/simple/stats'))
    raiseIfError(r)
    const stats = JSON.parse(r.text).model_stats
    expect(stats).toHaveLength(1)
    expect(stats[0]).toMatchObject({ name: 'simple', version: '1' })
    expect(stats[0].inference_stats.success.count).toBeGreaterThanOrEqual(6)
    expect(stats[0].inference_stats.fail.count).toBeGreaterThanOrEqual(1)
  })

  it('get_model_repository_index, unload_model, is_model_ready, load_model', async () => {
    const index = await http('POST', url('v2/repository/index'), { body: '' })
    raiseIfError(index)
    expect(JSON.parse(index.text)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'simple', version: '1', state: 'READY' }),
      ]),
    )

    raiseIfError(
      await http('POST', url('v2/repository/models/simple/unload'), {
        body: dumps({ parameters: { unload_dependents: false } }),
      }),
    )
    expect((await get(url('v2/models/simple/ready'))).status === 200).toBe(false)

    raiseIfError(await http('POST', url('v2/repository/models/simple/load'), { body: dumps({}) }))
    expect((await get(url('v2/models/simple/ready'))).status === 200).toBe(true)
    const r = await clientInfer('simple', [
      { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', raw: raw(input0) },
      { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', raw: raw(input1) },
    ])
    raiseIfError(r)
    expect(asArray(r, 'OUTPUT0')!.data).toEqual(sum)
  })
})
