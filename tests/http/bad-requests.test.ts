import { Agent, request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getJson, postJson, requestJson, type JsonResponse } from '../support/api-client.js'
import {
  addConstModel,
  addModel,
  identitiesModel,
  identityModel,
  int4OutputModel,
  reshapeTo2x2Model,
  sequenceOutputModel,
  writeVersion,
} from '../support/models.js'
import { inProcess } from '../support/in-process.js'
import { rawConnection, type RawResponse } from '../support/raw-http.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

/**
 * Every stable error code the simple API can produce, each from a real request to a real server,
 * answered with the right status and `{"error": {"code", "message"}}`; and the server still serves
 * afterwards. Also tensor and model names that are awkward in URLs and JavaScript objects.
 */

const GARBAGE = 'this is not an ONNX model'
const ODD_A = 'odd.names-a_1'
const ODD_B = 'odd.names-b_2'

function expectError(r: JsonResponse, status: number, code: string): string {
  expect(r.status, JSON.stringify(r.body)).toBe(status)
  expect(r.headers.get('content-type')).toMatch(/^application\/json/)
  expect(Object.keys(r.body)).toEqual(['error'])
  const error = r.body.error as Record<string, unknown>
  expect(error.code).toBe(code)
  expect(typeof error.message).toBe('string')
  expect((error.message as string).length).toBeGreaterThan(0)
  for (const key of Object.keys(error)) expect(['code', 'message', 'details']).toContain(key)
  return error.message as string
}

function request(
  url: string,
  method: string,
  body?: string,
  contentType = 'application/json',
): Promise<JsonResponse> {
  return requestJson(url, {
    method,
    ...(body !== undefined && { body, headers: { 'content-type': contentType } }),
  })
}

describe('bad requests to the simple API', () => {
  let t: TestServer
  const model = (name: string) => `${t.url}/models/${name}`

  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
      await writeVersion(dir, 'pair', 1, addModel())
      await writeVersion(dir, 'bytes', 1, identityModel('uint8', ['n']))
      await writeVersion(dir, 'anyrank', 1, identityModel('float32', undefined))
      await writeVersion(dir, 'versions', 1, addConstModel(1))
      await writeVersion(dir, 'versions', 2, addConstModel(2))
      await writeVersion(dir, 'versions', 3, GARBAGE)
      await writeVersion(dir, 'broken', 1, GARBAGE)
      await writeVersion(dir, 'int4', 1, int4OutputModel())
      await writeVersion(dir, 'reshape', 1, reshapeTo2x2Model())
      await writeVersion(dir, 'seq', 1, sequenceOutputModel())
      await writeVersion(
        dir,
        ODD_A,
        1,
        identitiesModel([
          ['onnx::Flatten_0', '39'],
          ['constructor', 'toString'],
        ]),
      )
      await writeVersion(
        dir,
        ODD_B,
        1,
        identitiesModel([
          ['__proto__', 'constructor'],
          ['39', 'onnx::Flatten_0'],
        ]),
      )
      await writeVersion(
        dir,
        'proto_out',
        1,
        identitiesModel([
          ['x', '__proto__'],
          ['z', 'y'],
        ]),
      )
      await writeVersion(
        dir,
        'proto_only',
        1,
        identityModel('float32', ['n'], { input: '__proto__', output: 'constructor' }),
      )
    })
  })
  afterAll(() => t?.close())

  describe('400', () => {
    it('invalid_json: malformed JSON, an empty body, whitespace only', async () => {
      expectError(
        await postJson(`${model('adder')}/predict`, '{"inputs": [[1, 2'),
        400,
        'invalid_json',
      )
      expectError(await postJson(`${model('adder')}/predict`, ''), 400, 'invalid_json')
      expectError(await postJson(`${model('adder')}/predict`, ' \n '), 400, 'invalid_json')
    })

    it('invalid_request: a body that is not an object', async () => {
      expectError(
        await postJson(`${model('adder')}/predict`, [[1, 2, 3, 4]]),
        400,
        'invalid_request',
      )
      expectError(await postJson(`${model('adder')}/predict`, '"inputs"'), 400, 'invalid_request')
      expectError(await postJson(`${model('adder')}/predict`, 'null'), 400, 'invalid_request')
    })

    it('invalid_request: "inputs" missing, naming it', async () => {
      expect(
        expectError(await postJson(`${model('adder')}/predict`, {}), 400, 'invalid_request'),
      ).toContain('inputs')
      expectError(
        await postJson(`${model('adder')}/predict`, { outputs: ['y'] }),
        400,
        'invalid_request',
      )
    })

    it('invalid_request: an unknown top-level key, naming it', async () => {
      const message = expectError(
        await postJson(`${model('adder')}/predict`, { inputs: [[1, 2, 3, 4]], inptus: 1 }),
        400,
        'invalid_request',
      )
      expect(message).toContain('inptus')
    })

    it('invalid_request: "outputs" empty or not a list of names, "output_format" unknown', async () => {
      const x = [[1, 2, 3, 4]]
      expectError(
        await postJson(`${model('adder')}/predict`, { inputs: x, outputs: [] }),
        400,
        'invalid_request',
      )
      expectError(
        await postJson(`${model('adder')}/predict`, { inputs: x, outputs: 'y' }),
        400,
        'invalid_request',
      )
      expectError(
        await postJson(`${model('adder')}/predict`, { inputs: x, outputs: ['y', 3] }),
        400,
        'invalid_request',
      )
      expectError(
        await postJson(`${model('adder')}/predict`, { inputs: x, output_format: 'xml' }),
        400,
        'invalid_request',
      )
    })

    it('invalid_request: a bare tensor (or null) for a model with two inputs', async () => {
      expect(
        expectError(
          await postJson(`${model('pair')}/predict`, { inputs: [1, 2] }),
          400,
          'invalid_request',
        ),
      ).toMatch(/'a'.*'b'/)
      expectError(
        await postJson(`${model('pair')}/predict`, { inputs: null }),
        400,
        'invalid_request',
      )
    })

    it('missing_input, naming the input', async () => {
      expect(
        expectError(
          await postJson(`${model('pair')}/predict`, { inputs: { a: [1] } }),
          400,
          'missing_input',
        ),
      ).toContain("'b'")
      expectError(await postJson(`${model('pair')}/predict`, { inputs: {} }), 400, 'missing_input')
    })

    it('unknown_input, naming the input', async () => {
      const r = await postJson(`${model('pair')}/predict`, { inputs: { a: [1], b: [2], c: [3] } })
      expect(expectError(r, 400, 'unknown_input')).toContain("'c'")
      expectError(
        await postJson(`${model('adder')}/predict`, { inputs: { X: [[1, 2, 3, 4]] } }),
        400,
        'unknown_input',
      )
    })

    it('unknown_output, naming the output', async () => {
      const r = await postJson(`${model('adder')}/predict`, {
        inputs: [[1, 2, 3, 4]],
        outputs: ['nope'],
      })
      expect(expectError(r, 400, 'unknown_output')).toContain("'nope'")
    })

    it('unknown_output for a sequence output, which is not served; the tensor output is', async () => {
      const message = expectError(
        await postJson(`${model('seq')}/predict`, { inputs: [1, 2], outputs: ['s'] }),
        400,
        'unknown_output',
      )
      expect(message).toMatch(/not served/)
      const ok = await postJson(`${model('seq')}/predict`, { inputs: [1, 2] })
      expect(ok.status, JSON.stringify(ok.body)).toBe(200)
      expect(ok.body.outputs).toEqual({ y: [1, 2] })
    })

    it('invalid_type: a string for float32, a typed tensor of another type', async () => {
      const message = expectError(
        await postJson(`${model('adder')}/predict`, { inputs: [[1, 2, 'three', 4]] }),
        400,
        'invalid_type',
      )
      expect(message).toContain("input 'x'[0][2]")
      const typed = { type: 'int64', shape: [1, 4], data: [1, 2, 3, 4] }
      expect(
        expectError(
          await postJson(`${model('adder')}/predict`, { inputs: { x: typed } }),
          400,
          'invalid_type',
        ),
      ).toMatch(/float32/)
    })

    it('invalid_value: 300 for uint8', async () => {
      const message = expectError(
        await postJson(`${model('bytes')}/predict`, { inputs: [1, 300] }),
        400,
        'invalid_value',
      )
      expect(message).toContain("input 'x'[1]")
      expect(message).toContain('300')
    })

    it('invalid_shape: a fixed dim of the wrong size, a ragged array', async () => {
      expect(
        expectError(
          await postJson(`${model('adder')}/predict`, { inputs: [[1, 2, 3]] }),
          400,
          'invalid_shape',
        ),
      ).toMatch(/dim 1 must be 4/)
      const ragged = await postJson(`${model('adder')}/predict`, { inputs: [[1, 2, 3, 4], [5]] })
      expect(expectError(ragged, 400, 'invalid_shape')).toContain("input 'x'[1]")
    })

    // JSON.parse takes any depth; every walk of a tensor after it is bounded by the rank (or 64).
    it('invalid_shape (never a 500): tensors nested 100,000 deep, as nested or typed data, for declared and unknown rank', async () => {
      const deep = (inner: string) => '['.repeat(100_000) + inner + ']'.repeat(100_000)
      for (const [name, tensor] of [
        ['adder', deep('')],
        ['adder', deep('1')],
        ['adder', `{"type": "float32", "shape": [1, 4], "data": ${deep('1')}}`],
        ['anyrank', deep('1')],
        ['anyrank', `{"shape": [1], "data": ${deep('')}}`],
      ] as const) {
        const message = expectError(
          await postJson(`${model(name)}/predict`, `{"inputs": {"x": ${tensor}}}`),
          400,
          'invalid_shape',
        )
        expect(message).toMatch(/nested more than (2|64) levels/)
      }
    })

    it('a value nested 100,000 deep where a message would show it is named without being written out', async () => {
      const deepObject = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)
      const deepArray = '['.repeat(100_000) + ']'.repeat(100_000)
      const typed = (fields: string) => `{"inputs": {"x": {${fields}}}}`
      expectError(
        await postJson(
          `${model('adder')}/predict`,
          typed(`"type": ${deepArray}, "shape": [1, 4], "data": [1, 2, 3, 4]`),
        ),
        400,
        'invalid_type',
      )
      expectError(
        await postJson(
          `${model('adder')}/predict`,
          typed(`"shape": ${deepObject}, "data": [1, 2, 3, 4]`),
        ),
        400,
        'invalid_shape',
      )
      expectError(
        await postJson(
          `${model('adder')}/predict`,
          typed(`"shape": [1, 4], "data": ${deepObject}`),
        ),
        400,
        'invalid_type',
      )
      expectError(
        await postJson(
          `${model('adder')}/predict`,
          typed(`"shape": [1, 4], "data": [${deepObject}, 2, 3, 4]`),
        ),
        400,
        'invalid_type',
      )
      expectError(
        await postJson(
          `${model('adder')}/predict`,
          `{"inputs": {"x": [[1, 2, 3, 4]]}, "outputs": ${deepArray}}`,
        ),
        400,
        'invalid_request',
      )
    })

    it('unsupported_media_type: a body that is not declared as JSON', async () => {
      const body = JSON.stringify({ inputs: [[1, 2, 3, 4]] })
      expectError(
        await request(`${model('adder')}/predict`, 'POST', body, 'text/plain'),
        415,
        'unsupported_media_type',
      )
      expectError(
        await request(
          `${model('adder')}/predict`,
          'POST',
          body,
          'application/x-www-form-urlencoded',
        ),
        415,
        'unsupported_media_type',
      )
    })

    it('one Content-Type rule on every route that takes a body: JSON or none; octet-stream only for V2 infer', async () => {
      const v2 = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }
      const routes: { url: string; body: string }[] = [
        { url: `${model('adder')}/predict`, body: JSON.stringify({ inputs: [[1, 2, 3, 4]] }) },
        { url: `${t.url}/v2/models/adder/infer`, body: JSON.stringify(v2) },
        { url: `${t.url}/models/versions/rollback`, body: '{}' },
        { url: `${t.url}/models/versions/promote`, body: '{"version": 2}' },
        { url: `${t.url}/v2/repository/index`, body: '{}' },
      ]
      // V2 routes answer errors as {"error": "<message>"}, the others as {"error": {"code", "message"}}.
      const refused = (r: JsonResponse) => {
        expect(r.status, JSON.stringify(r.body)).toBe(415)
        if (typeof r.body.error === 'string') return r.body.error as string
        expect(r.body.error.code).toBe('unsupported_media_type')
        return r.body.error.message as string
      }
      for (const { url, body } of routes) {
        // curl -d's default, a browser form, and fetch's default for a string body: refused, and
        // the form case says how to fix the curl command.
        expect(
          refused(await request(url, 'POST', body, 'application/x-www-form-urlencoded')),
        ).toMatch(/curl -d .*content-type: application\/json/)
        refused(await request(url, 'POST', body, 'text/plain;charset=UTF-8'))
        refused(await request(url, 'POST', body, 'multipart/form-data; boundary=x'))
        // JSON, a +json type, and no Content-Type at all (Triton's client sends none) are JSON.
        for (const type of [
          'application/json',
          'application/json; charset=utf-8',
          'application/vnd.api+json',
        ]) {
          expect((await request(url, 'POST', body, type)).status, `${url} ${type}`).not.toBe(415)
        }
        const bare = await fetch(url, { method: 'POST', body: new TextEncoder().encode(body) })
        expect(bare.status, url).not.toBe(415)
        await bare.body?.cancel()
      }
      // octet-stream is the V2 binary extension's type: V2 infer only.
      expect(
        (
          await request(
            `${t.url}/v2/models/adder/infer`,
            'POST',
            JSON.stringify(v2),
            'application/octet-stream',
          )
        ).status,
      ).toBe(200)
      expectError(
        await request(
          `${model('adder')}/predict`,
          'POST',
          JSON.stringify({ inputs: [[1, 2, 3, 4]] }),
          'application/octet-stream',
        ),
        415,
        'unsupported_media_type',
      )
    })
  })

  describe('404 and 405', () => {
    it('model_not_found', async () => {
      expect(
        expectError(
          await postJson(`${model('nope')}/predict`, { inputs: [1] }),
          404,
          'model_not_found',
        ),
      ).toContain("'nope'")
      expectError(
        await postJson(`${model('nope')}/versions/1/predict`, { inputs: [1] }),
        404,
        'model_not_found',
      )
    })

    it('version_not_found: a version that is not on disk, or not a version number', async () => {
      const x = { inputs: [[1, 2, 3, 4]] }
      expectError(
        await postJson(`${model('versions')}/versions/9/predict`, x),
        404,
        'version_not_found',
      )
      for (const v of ['abc', '0', '01', '-1', '1.0']) {
        expectError(
          await postJson(`${model('versions')}/versions/${v}/predict`, x),
          404,
          'version_not_found',
        )
      }
    })

    it('version_not_loaded: a version that was rejected, and an older one that was never loaded', async () => {
      const x = { inputs: [[1, 2, 3, 4]] }
      expectError(
        await postJson(`${model('versions')}/versions/3/predict`, x),
        404,
        'version_not_loaded',
      )
      expectError(
        await postJson(`${model('versions')}/versions/1/predict`, x),
        404,
        'version_not_loaded',
      )
      const ok = await postJson(`${model('versions')}/versions/2/predict`, x)
      expect(ok.status).toBe(200)
      expect(ok.headers.get('x-model-version')).toBe('2')
      expect(ok.body).toEqual({
        id: expect.any(String),
        model: 'versions',
        version: 2,
        outputs: { y: [[3, 4, 5, 6]] },
      })
    })

    it('no_default_model: POST /predict with several models and no --default-model', async () => {
      expectError(
        await postJson(`${t.url}/predict`, { inputs: [[1, 2, 3, 4]] }),
        404,
        'no_default_model',
      )
    })

    // The fast path takes POST only and routes it exactly: these are the Hono app's, in process.
    it('method_not_allowed with an Allow header naming POST', async () => {
      for (const [method, path] of [
        ['GET', '/predict'],
        ['GET', '/models/adder/predict'],
        ['PUT', '/models/adder/predict'],
        ['DELETE', '/models/adder/versions/1/predict'],
      ] as const) {
        const r = await inProcess(t)(path, { method })
        expectError(r, 405, 'method_not_allowed')
        expect(r.headers.get('allow')).toMatch(/\bPOST\b/)
      }
    })

    it('route_not_found', async () => {
      const post = (path: string) =>
        inProcess(t)(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [1] }),
        })
      expectError(await inProcess(t)('/nope'), 404, 'route_not_found')
      expectError(await post('/models/adder/predict/extra'), 404, 'route_not_found')
      expectError(await post('/models/adder/versions/1/predict/x'), 404, 'route_not_found')
    })
  })

  describe('5xx', () => {
    it('model_not_ready: a model whose only version is garbage', async () => {
      expect(
        expectError(
          await postJson(`${model('broken')}/predict`, { inputs: [1] }),
          503,
          'model_not_ready',
        ),
      ).toContain("'broken'")
    })

    it('model_not_ready: a model with an int4 output is refused at load and never run', async () => {
      expectError(
        await postJson(`${model('int4')}/predict`, { inputs: [1, 2] }),
        503,
        'model_not_ready',
      )
      const detail = await getJson(model('int4'))
      expect(detail.body.versions).toEqual([
        expect.objectContaining({ version: 1, status: 'rejected', reason: 'unsupported_model' }),
      ])
      expect(detail.body.versions[0].message).toMatch(/int4/)
    })

    it("inference_failed: sizes the metadata allows but the kernel refuses, with the runtime's message", async () => {
      const message = expectError(
        await postJson(`${model('reshape')}/predict`, { inputs: [1, 2, 3] }),
        500,
        'inference_failed',
      )
      expect(message).toMatch(/reshape/i)
      const ok = await postJson(`${model('reshape')}/predict`, { inputs: [1, 2, 3, 4] })
      expect(ok.status).toBe(200)
      expect(ok.body.outputs).toEqual({
        y: [
          [1, 2],
          [3, 4],
        ],
      })
    })
  })

  describe('odd tensor and model names', () => {
    // Raw JSON bodies: a "__proto__" key in an object literal would set its prototype instead.
    const own = (o: object, key: string): unknown => Object.getOwnPropertyDescriptor(o, key)?.value

    it('serves inputs and outputs named __proto__, 39, onnx::Flatten_0, constructor and toString', async () => {
      const b = await postJson(
        `${model(ODD_B)}/predict`,
        '{"inputs": {"__proto__": [5], "39": [6, 7]}}',
      )
      expect(b.status, JSON.stringify(b.body)).toBe(200)
      expect(Object.getOwnPropertyNames(b.body.outputs).sort()).toEqual([
        'constructor',
        'onnx::Flatten_0',
      ])
      expect(own(b.body.outputs, 'constructor')).toEqual([5])
      expect(own(b.body.outputs, 'onnx::Flatten_0')).toEqual([6, 7])

      const a = await postJson(`${model(ODD_A)}/predict`, {
        inputs: { 'onnx::Flatten_0': [1, 2], constructor: [3] },
      })
      expect(a.status, JSON.stringify(a.body)).toBe(200)
      expect(a.body.outputs).toEqual({ 39: [1, 2], toString: [3] })
      const subset = await postJson(`${model(ODD_A)}/predict`, {
        inputs: { 'onnx::Flatten_0': [1, 2], constructor: [3] },
        outputs: ['toString'],
      })
      expect(subset.body.outputs).toEqual({ toString: [3] })
    })

    it('never answers 500 for a model with an output named __proto__: it is served, reported as not served, or refused at load', async () => {
      // onnxruntime-common keys fetches and results by name in plain {} objects, where "__proto__"
      // sets the prototype: session.run() cannot return such an output, and the native binding
      // then reads Object.prototype as a pre-allocated output when other outputs are asked for.
      const detail = await getJson(model('proto_out'))
      if (detail.body.active === null) {
        expect(detail.body.versions[0]).toMatchObject({ status: 'rejected' })
        expect(detail.body.versions[0].message).toContain('__proto__')
        expectError(
          await postJson(`${model('proto_out')}/predict`, { inputs: { x: [1], z: [2] } }),
          503,
          'model_not_ready',
        )
        return
      }
      const all = await postJson(`${model('proto_out')}/predict`, { inputs: { x: [1], z: [2] } })
      expect(all.status, JSON.stringify(all.body)).toBe(200)
      expect(own(all.body.outputs, 'y')).toEqual([2])
      if (own(all.body.outputs, '__proto__') !== undefined)
        expect(own(all.body.outputs, '__proto__')).toEqual([1])

      const onlyY = await postJson(`${model('proto_out')}/predict`, {
        inputs: { x: [1], z: [2] },
        outputs: ['y'],
      })
      expect(onlyY.status, JSON.stringify(onlyY.body)).toBe(200)
      expect(onlyY.body.outputs).toEqual({ y: [2] })

      const onlyProto = await postJson(`${model('proto_out')}/predict`, {
        inputs: { x: [1], z: [2] },
        outputs: ['__proto__'],
      })
      if (onlyProto.status === 200) expect(own(onlyProto.body.outputs, '__proto__')).toEqual([1])
      else expectError(onlyProto, 400, 'unknown_output')
    })

    it('serves a subset of outputs that leaves out one named constructor or toString (was 500 inference_failed; found by tests/fuzz)', async () => {
      // onnxruntime-node looks outputs up in its fetches object prototype included: an output named
      // 'toString' that was not asked for was found as Object.prototype.toString, and the run failed.
      const b = await postJson(
        `${model(ODD_B)}/predict`,
        '{"inputs": {"__proto__": [5], "39": [6, 7]}, "outputs": ["onnx::Flatten_0"]}',
      )
      expect(b.status, JSON.stringify(b.body)).toBe(200)
      expect(b.body.outputs).toEqual({ 'onnx::Flatten_0': [6, 7] })
      const a = await postJson(`${model(ODD_A)}/predict`, {
        inputs: { 'onnx::Flatten_0': [1, 2], constructor: [3] },
        outputs: ['39'],
      })
      expect(a.status, JSON.stringify(a.body)).toBe(200)
      expect(a.body.outputs).toEqual({ 39: [1, 2] })
      const v2 = await postJson(`${t.url}/v2/models/${ODD_A}/infer`, {
        inputs: [
          { name: 'onnx::Flatten_0', shape: [2], datatype: 'FP32', data: [1, 2] },
          { name: 'constructor', shape: [1], datatype: 'FP32', data: [3] },
        ],
        outputs: [{ name: '39' }],
      })
      expect(v2.status, JSON.stringify(v2.body)).toBe(200)
      expect(v2.body.outputs).toEqual([{ name: '39', datatype: 'FP32', shape: [2], data: [1, 2] }])
    })

    it('reports a missing input named __proto__, and does not take prototype names for tensors', async () => {
      expect(
        expectError(
          await postJson(`${model(ODD_B)}/predict`, '{"inputs": {"39": [1]}}'),
          400,
          'missing_input',
        ),
      ).toContain('__proto__')
      const withToString = '{"inputs": {"__proto__": [1], "39": [2], "toString": [3]}}'
      expect(
        expectError(await postJson(`${model(ODD_B)}/predict`, withToString), 400, 'unknown_input'),
      ).toContain('toString')
      const askHasOwn = '{"inputs": {"__proto__": [1], "39": [2]}, "outputs": ["hasOwnProperty"]}'
      expectError(await postJson(`${model(ODD_B)}/predict`, askHasOwn), 400, 'unknown_output')
    })

    it('feeds a bare tensor to a single input named __proto__', async () => {
      const r = await postJson(`${model('proto_only')}/predict`, { inputs: [1.5, 2.5] })
      expect(r.status, JSON.stringify(r.body)).toBe(200)
      expect(own(r.body.outputs, 'constructor')).toEqual([1.5, 2.5])
    })

    it('takes a model name with ".", "-" and "_" in every URL', async () => {
      const detail = await getJson(model(ODD_B))
      expect(detail.status).toBe(200)
      expect(detail.body).toMatchObject({ name: ODD_B, active: 1 })
      const r = await postJson(
        `${model(ODD_B)}/versions/1/predict`,
        '{"inputs": {"__proto__": [0], "39": [0]}}',
      )
      expect(r.status, JSON.stringify(r.body)).toBe(200)
      expect(r.body.model).toBe(ODD_B)
      expect(r.headers.get('x-model-version')).toBe('1')
    })
  })

  // Last: every request above was refused cleanly and changed nothing.
  it('still serves good requests after all the bad ones', async () => {
    const r = await postJson(`${model('adder')}/predict`, { inputs: [[1, 2, 3, 4]] })
    expect(r.status).toBe(200)
    expect(r.body).toEqual({
      id: expect.any(String),
      model: 'adder',
      version: 1,
      outputs: { y: [[2, 3, 4, 5]] },
    })
    const pair = await postJson(`${model('pair')}/predict`, { inputs: { b: [10, 20], a: [1, 2] } })
    expect(pair.body.outputs).toEqual({ sum: [11, 22] })
    const versions = await getJson(model('versions'))
    expect(versions.body.active).toBe(2)
    const health = await getJson(`${t.url}/healthz`)
    expect(health.status).toBe(200)
  })
})

describe('payload_too_large', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(
      (dir) => writeVersion(dir, 'bytes', 1, identityModel('uint8', ['n'])).then(() => undefined),
      { maxBodySize: '1k' },
    )
  })
  afterAll(() => t?.close())

  it('answers 413 for a 2 KB body when the limit is 1k, and serves a small one', async () => {
    const big = { inputs: new Array(1000).fill(1) } // "1," x 1000: about 2 KB
    expect(JSON.stringify(big).length).toBeGreaterThan(2000)
    expectError(await postJson(`${t.url}/predict`, big), 413, 'payload_too_large')
    expectError(
      await postJson(`${t.url}/models/bytes/versions/1/predict`, big),
      413,
      'payload_too_large',
    )
    const small = await postJson(`${t.url}/predict`, { inputs: [1, 2, 3] })
    expect(small.status).toBe(200)
    expect(small.body.outputs).toEqual({ y: [1, 2, 3] })
  })

  it('answers 413 for a chunked body with no Content-Length that grows past the limit', async () => {
    const chunk = new TextEncoder().encode(`${'1,'.repeat(500)}`)
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"inputs": ['))
        if (sent < 4) controller.enqueue(chunk)
        else {
          controller.enqueue(new TextEncoder().encode('1]}'))
          controller.close()
        }
        sent++
      },
    })
    const res = await fetch(`${t.url}/predict`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit)
    expectError(
      { status: res.status, headers: res.headers, body: await res.json() },
      413,
      'payload_too_large',
    )
  })
})

describe('requests at the edges of HTTP (found by tests/fuzz)', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer((dir) =>
      writeVersion(dir, 'adder', 1, addConstModel(1)).then(() => undefined),
    )
  })
  afterAll(() => t?.close())

  async function raw(head: string): Promise<RawResponse> {
    const c = rawConnection(t.url, head)
    const r = await c.response
    c.socket.destroy()
    expect(r, `no answer to ${JSON.stringify(head)}`).toBeDefined()
    return r!
  }

  it('a Host header that is not a host name, or a backslash in the path: 400 invalid_request in the documented form (was an empty 400)', async () => {
    for (const head of [
      'GET /models HTTP/1.1\r\nHost: a b\r\n\r\n',
      'GET /models\\x HTTP/1.1\r\nHost: localhost\r\n\r\n',
    ]) {
      const r = await raw(head)
      expect(r.status, head).toBe(400)
      expect(r.headers['content-type']).toBe('application/json')
      expect(JSON.parse(r.body)).toEqual({
        error: { code: 'invalid_request', message: expect.stringContaining('is not valid') },
      })
    }
    // V2 routes answer in the protocol's form, whatever query or fragment the target has.
    for (const head of [
      'GET /v2/models/a\\b HTTP/1.1\r\nHost: localhost\r\n\r\n',
      'GET /v2?x=1 HTTP/1.1\r\nHost: a b\r\n\r\n',
      'GET /v2#f HTTP/1.1\r\nHost: a b\r\n\r\n',
    ]) {
      const v2 = await raw(head)
      expect(v2.status, head).toBe(400)
      expect(JSON.parse(v2.body), head).toEqual({ error: expect.stringContaining('is not valid') })
    }
  })

  it('a request asking to upgrade the connection is answered and its connection closed: the next request is served (it hung, then the connection reset)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const ask = (method: string, path: string, headers: Record<string, string>, body?: Buffer) =>
      new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const { hostname, port } = new URL(t.url)
        const req = httpRequest(
          { host: hostname, port: Number(port), method, path, headers, agent },
          (res) => {
            res.resume()
            res.on('end', () =>
              resolve({ status: res.statusCode!, connection: res.headers.connection }),
            )
          },
        )
        req.on('error', reject)
        req.end(body)
      })
    try {
      // A body the route does not read, and an answer that streams (compressed): Node 20 then left the
      // connection unable to parse the next request.
      const upgrade = { connection: 'upgrade', upgrade: 'websocket', 'accept-encoding': 'gzip' }
      const first = await ask('DELETE', '/no-such-route', upgrade, Buffer.alloc(256 * 1024, 0x20))
      expect(first).toEqual({ status: 404, connection: 'close' })
      expect(await ask('GET', '/healthz', {})).toMatchObject({ status: 200 })
    } finally {
      agent.destroy()
    }
  })

  it('HTTP/1.0 without a Host header (a simple probe) is served (was an empty 400)', async () => {
    const r = await raw('GET /healthz HTTP/1.0\r\n\r\n')
    expect(r.status).toBe(200)
    expect(JSON.parse(r.body)).toEqual({ status: 'ok' })
    const models = await raw('GET /models/adder HTTP/1.0\r\n\r\n')
    expect(JSON.parse(models.body)).toMatchObject({ name: 'adder', active: 1 })
  })
})
