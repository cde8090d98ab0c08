import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addConstModel, identitiesModel, identityModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import {
  flat,
  get,
  jsonElement,
  mismatches,
  nest,
  ONNX_OF_V2,
  parseExactJson,
  postJson,
  rawDataLiterals,
  SAMPLES,
  splitResponse,
  V2_DATATYPES,
  v2Error,
  type RawResponse,
  type V2Datatype,
} from './v2-support.js'

/**
 * KServe V2 / Open Inference Protocol over HTTP/REST, JSON tensors, against the real server.
 * Spec: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
 * (kserve/kserve docs/predict-api/v2/required_api.md and rest_predict_v2.yaml).
 */

let t: TestServer
const v2 = (path: string) => `${t.url}/v2${path}`
const idModel = (dt: V2Datatype) => `id_${dt}`

beforeAll(async () => {
  t = await startTestServer(async (dir) => {
    // y = x for every V2 datatype, declared [batch, 3]: metadata shows [-1, 3].
    for (const dt of V2_DATATYPES)
      await writeVersion(dir, idModel(dt), 1, identityModel(ONNX_OF_V2[dt], ['batch', 3]))
    await writeVersion(
      dir,
      'multi',
      1,
      identitiesModel(
        [
          ['a', 'ya'],
          ['b', 'yb'],
          ['c', 'yc'],
        ],
        'float32',
      ),
    )
    await writeVersion(dir, 'fixed', 1, identityModel('float32', [2, 3]))
    await writeVersion(dir, 'versioned', 1, addConstModel(1))
    await writeVersion(dir, 'versioned', 2, addConstModel(2))
    await writeVersion(dir, 'half_rejected', 1, addConstModel(1))
    await writeVersion(dir, 'half_rejected', 2, 'not an ONNX model')
  })
}, 120_000)
afterAll(() => t?.close())

function json(r: RawResponse): any {
  return JSON.parse(r.text)
}

/** A V2 error: the status, a JSON content type, and exactly {"error": "<message>"} (spec: "...Error Object"). */
function expectV2Error(r: RawResponse, status: number): string {
  expect(r.status, r.text).toBe(status)
  expect(r.headers['content-type']).toMatch(/^application\/json/)
  return v2Error(r)
}

// Spec "Health": GET v2/health/live, v2/health/ready; 200 means true.
describe('health', () => {
  it('server live answers 200', async () => {
    expect((await get(v2('/health/live'))).status).toBe(200)
  })

  it('server ready answers 200 once every model is ready', async () => {
    expect((await get(v2('/health/ready'))).status).toBe(200)
  })
})

// Spec "Server Metadata": $metadata_server_response = {name, version, extensions}; the binary
// data, model repository and statistics extension documents each say the server lists their name.
describe('server metadata (GET v2)', () => {
  it('names the server and its version, and lists the extensions it implements', async () => {
    const r = await get(v2(''))
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toMatch(/^application\/json/)
    const body = json(r)
    expect(typeof body.name).toBe('string')
    expect(body.name.length).toBeGreaterThan(0)
    expect(typeof body.version).toBe('string')
    expect(Array.isArray(body.extensions)).toBe(true)
    for (const e of body.extensions) expect(typeof e).toBe('string')
    expect(body.extensions).toEqual(
      expect.arrayContaining(['binary_tensor_data', 'model_repository', 'statistics']),
    )
  })
})

// Spec "Model Metadata": $metadata_model_response = {name, versions: [$string] #optional, platform,
// inputs, outputs}; $metadata_tensor = {name, datatype, shape}; "Variable-size dimensions are
// specified as -1". Platform names use the format "<project>_<format>" ("Platforms").
describe('model metadata (GET v2/models/{name}[/versions/{v}])', () => {
  it.each(V2_DATATYPES)(
    '%s identity model: datatype and shape with -1 for the dynamic dim',
    async (dt) => {
      const r = await get(v2(`/models/${idModel(dt)}`))
      expect(r.status, r.text).toBe(200)
      const body = json(r)
      expect(body.name).toBe(idModel(dt))
      expect(body.versions).toEqual(['1'])
      expect(body.inputs).toEqual([{ name: 'x', datatype: dt, shape: [-1, 3] }])
      expect(body.outputs).toEqual([{ name: 'y', datatype: dt, shape: [-1, 3] }])
    },
  )

  it('gives a platform name of the form <project>_<format>', async () => {
    const body = json(await get(v2('/models/fixed')))
    expect(typeof body.platform).toBe('string')
    expect(body.platform).toMatch(/^[a-z0-9]+_[a-z0-9]+$/)
  })

  it('keeps fixed dims as they are', async () => {
    const body = json(await get(v2('/models/fixed')))
    expect(body.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [2, 3] }])
    expect(body.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [2, 3] }])
  })

  it('lists inputs and outputs of a model with several of each', async () => {
    const body = json(await get(v2('/models/multi')))
    expect(body.inputs.map((i: { name: string }) => i.name).sort()).toEqual(['a', 'b', 'c'])
    expect(body.outputs.map((o: { name: string }) => o.name).sort()).toEqual(['ya', 'yb', 'yc'])
    for (const tensor of [...body.inputs, ...body.outputs])
      expect(tensor).toMatchObject({ datatype: 'FP32', shape: [-1] })
  })

  it('lists versions as strings, and answers the /versions/{v} form for one that can be requested', async () => {
    const all = json(await get(v2('/models/versioned')))
    expect(all.name).toBe('versioned')
    expect(all.versions.length).toBeGreaterThan(0)
    for (const v of all.versions) expect(typeof v).toBe('string')
    expect(all.versions).toContain('2')
    for (const v of all.versions) {
      const r = await get(v2(`/models/versioned/versions/${v}`))
      expect(r.status, r.text).toBe(200)
      const one = json(r)
      expect(one.name).toBe('versioned')
      expect(one.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }])
      expect(one.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, 4] }])
    }
  })

  it('answers a version that exists but was rejected with 404, not 503: the model serves (found by tests/fuzz)', async () => {
    expect(expectV2Error(await get(v2('/models/half_rejected/versions/2')), 404)).toBe(
      "version 2 of model 'half_rejected' is not loaded (rejected)",
    )
    expect((await get(v2('/models/half_rejected'))).status).toBe(200)
  })

  it('answers an unknown model or version with an error object', async () => {
    expectV2Error(await get(v2('/models/no-such-model')), 404)
    expectV2Error(await get(v2('/models/no-such-model/versions/1')), 404)
    const r = await get(v2('/models/versioned/versions/99'))
    expect(r.status).toBeGreaterThanOrEqual(400)
    v2Error(r)
  })
})

// Spec "Model Ready": GET v2/models/{name}[/versions/{v}]/ready; 200 means ready. A missing model
// is an error: 404 with the error object.
describe('model ready', () => {
  it('answers 200 for a model that serves, with or without its version', async () => {
    expect((await get(v2('/models/id_FP32/ready'))).status).toBe(200)
    expect((await get(v2('/models/id_FP32/versions/1/ready'))).status).toBe(200)
    expect((await get(v2('/models/versioned/versions/2/ready'))).status).toBe(200)
  })

  it('answers 404 with {"error": "..."} for a model that does not exist', async () => {
    expectV2Error(await get(v2('/models/no-such-model/ready')), 404)
  })

  it('does not answer 200 for a version that is not loaded', async () => {
    const r = await get(v2('/models/versioned/versions/99/ready'))
    expect(r.status).not.toBe(200)
  })
})

// Spec "Inference": $inference_request {id, parameters, inputs, outputs}; $request_input {name,
// shape, datatype, data}; $inference_response {model_name, model_version, id, outputs}; "Tensor
// Data": row-major, "presented in their nature multi-dimensional representation, or as a flattened
// one-dimensional representation"; "Tensor Data Types" lists the 13 datatypes.
describe('infer with JSON tensors, every datatype', () => {
  async function inferIdentity(
    dt: V2Datatype,
    data: unknown,
    path = `/models/${idModel(dt)}/infer`,
  ) {
    const id = `req-${dt}-${Math.random().toString(36).slice(2)}`
    const r = await postJson(v2(path), {
      id,
      inputs: [{ name: 'x', shape: [2, 3], datatype: dt, data }],
    })
    expect(r.status, r.text).toBe(200)
    expect(r.headers['content-type']).toMatch(/^application\/json/)
    expect(r.headers['inference-header-content-length']).toBeUndefined()
    const { header } = splitResponse(r)
    expect(header.model_name).toBe(idModel(dt))
    expect(header.model_version).toBe('1')
    expect(header.id).toBe(id)
    expect(header.outputs).toHaveLength(1)
    const out = header.outputs[0]!
    expect(out).toMatchObject({ name: 'y', datatype: dt, shape: [2, 3] })
    expect(Array.isArray(out.data)).toBe(true)
    expect(mismatches(dt, flat(out.data), SAMPLES[dt])).toEqual([])
  }

  it.each(V2_DATATYPES)('%s: flat data', async (dt) => {
    await inferIdentity(dt, SAMPLES[dt].map(jsonElement))
  })

  it.each(V2_DATATYPES)('%s: nested data', async (dt) => {
    await inferIdentity(dt, nest(SAMPLES[dt].map(jsonElement), [2, 3]))
  })

  it.each(V2_DATATYPES)('%s: through /versions/1/infer', async (dt) => {
    await inferIdentity(dt, SAMPLES[dt].map(jsonElement), `/models/${idModel(dt)}/versions/1/infer`)
  })

  it('FP16, FP32, FP64: NaN and ±Infinity as the strings "NaN", "Infinity", "-Infinity", both ways', async () => {
    for (const dt of ['FP16', 'FP32', 'FP64'] as const) {
      const values = [NaN, Infinity, -Infinity, 1, -1, 0]
      const r = await postJson(v2(`/models/${idModel(dt)}/infer`), {
        inputs: [{ name: 'x', shape: [2, 3], datatype: dt, data: values.map(jsonElement) }],
      })
      expect(r.status, r.text).toBe(200)
      const out = splitResponse(r).header.outputs[0]!
      expect(flat(out.data)).toEqual(['NaN', 'Infinity', '-Infinity', 1, -1, 0])
    }
  })

  it('answers with the version that ran: model_version is the active version as a string', async () => {
    const x = [1, 2, 3, 4]
    const r = await postJson(v2('/models/versioned/infer'), {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: x }],
    })
    expect(r.status, r.text).toBe(200)
    const body = json(r)
    expect(body.model_name).toBe('versioned')
    expect(body.model_version).toBe('2')
    // No id in the request: one is made up, and feedback can name it.
    expect(body.id).toEqual(expect.any(String))
    expect(flat(body.outputs[0].data)).toEqual([3, 4, 5, 6])
    const pinned = json(
      await postJson(v2('/models/versioned/versions/2/infer'), {
        inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: x }],
      }),
    )
    expect(pinned.model_version).toBe('2')
  })
})

// INT64/UINT64 ("Tensor Data Types": 8 bytes) in JSON: clients send them as plain number literals;
// every 64-bit value must survive, so the raw response text must carry the same literals.
describe('infer with INT64/UINT64 values beyond 2^53, as raw JSON number literals', () => {
  const LITERALS = {
    INT64: [
      '9223372036854775807',
      '-9223372036854775808',
      '9007199254740993',
      '-9007199254740993',
      '9007199254740992',
      '0',
    ],
    UINT64: [
      '18446744073709551615',
      '9223372036854775808',
      '9007199254740993',
      '18446744073709551614',
      '0',
      '1',
    ],
  } as const

  it.each(['INT64', 'UINT64'] as const)(
    '%s: flat data comes back as the same literals',
    async (dt) => {
      const body = `{"id":"big","inputs":[{"name":"x","shape":[2,3],"datatype":"${dt}","data":[${LITERALS[dt].join(',')}]}]}`
      const r = await postJson(v2(`/models/${idModel(dt)}/infer`), body)
      expect(r.status, r.text).toBe(200)
      expect(rawDataLiterals(r.text, 'y')).toEqual([...LITERALS[dt]])
      // And read exactly (BigInt), not through JSON.parse's rounding.
      const out = splitResponse(r).header.outputs[0]!
      expect(flat(out.data).map((v) => BigInt(v as number | bigint))).toEqual(
        LITERALS[dt].map((s) => BigInt(s)),
      )
    },
  )

  it.each(['INT64', 'UINT64'] as const)(
    '%s: nested data, pretty-printed, comes back as the same literals',
    async (dt) => {
      const [a, b, c, d, e, f] = LITERALS[dt]
      const body = `{\n  "inputs" : [ {\n    "name" : "x", "shape" : [ 2, 3 ], "datatype" : "${dt}",\n    "data" : [ [ ${a}, ${b}, ${c} ],\n               [ ${d}, ${e}, ${f} ] ]\n  } ]\n}`
      const r = await postJson(v2(`/models/${idModel(dt)}/infer`), body)
      expect(r.status, r.text).toBe(200)
      expect(rawDataLiterals(r.text, 'y')).toEqual([...LITERALS[dt]])
    },
  )

  it('a 16-digit literal inside a string (the id) is left alone', async () => {
    const body = `{"id":"12345678901234567890","inputs":[{"name":"x","shape":[1,3],"datatype":"INT64","data":[1,2,9007199254740993]}]}`
    const r = await postJson(v2(`/models/id_INT64/infer`), body)
    expect(r.status, r.text).toBe(200)
    expect(splitResponse(r).header.id).toBe('12345678901234567890')
    expect(rawDataLiterals(r.text, 'y')).toEqual(['1', '2', '9007199254740993'])
  })

  it('refuses values outside the type rather than wrapping them', async () => {
    const over = `{"inputs":[{"name":"x","shape":[1,3],"datatype":"INT64","data":[0,0,9223372036854775808]}]}`
    expectV2Error(await postJson(v2('/models/id_INT64/infer'), over), 400)
    const negative = `{"inputs":[{"name":"x","shape":[1,3],"datatype":"UINT64","data":[0,0,-1]}]}`
    expectV2Error(await postJson(v2('/models/id_UINT64/infer'), negative), 400)
    const tooBig = `{"inputs":[{"name":"x","shape":[1,3],"datatype":"UINT64","data":[0,0,18446744073709551616]}]}`
    expectV2Error(await postJson(v2('/models/id_UINT64/infer'), tooBig), 400)
  })
})

// Spec "Inference Request JSON Object": "outputs" — "The output tensors requested for this
// inference ... Optional, if not specified all outputs produced by the model will be returned".
describe('requested outputs', () => {
  const inputs = [
    { name: 'a', shape: [3], datatype: 'FP32', data: [1, 2, 3] },
    { name: 'b', shape: [2], datatype: 'FP32', data: [4, 5] },
    { name: 'c', shape: [1], datatype: 'FP32', data: [6] },
  ]

  it('returns every output when none is named', async () => {
    const r = await postJson(v2('/models/multi/infer'), { inputs })
    expect(r.status, r.text).toBe(200)
    const outputs = json(r).outputs as { name: string; shape: number[]; data: number[] }[]
    expect(outputs.map((o) => o.name).sort()).toEqual(['ya', 'yb', 'yc'])
    const byName = Object.fromEntries(outputs.map((o) => [o.name, o]))
    expect(byName.ya).toMatchObject({ datatype: 'FP32', shape: [3], data: [1, 2, 3] })
    expect(byName.yb).toMatchObject({ datatype: 'FP32', shape: [2], data: [4, 5] })
    expect(byName.yc).toMatchObject({ datatype: 'FP32', shape: [1], data: [6] })
  })

  it('returns only the outputs named', async () => {
    const r = await postJson(v2('/models/multi/infer'), {
      inputs,
      outputs: [{ name: 'yc' }, { name: 'ya' }],
    })
    expect(r.status, r.text).toBe(200)
    const outputs = json(r).outputs as { name: string; data: number[] }[]
    expect(outputs.map((o) => o.name).sort()).toEqual(['ya', 'yc'])
    expect(outputs.find((o) => o.name === 'yc')!.data).toEqual([6])
    expect(outputs.find((o) => o.name === 'ya')!.data).toEqual([1, 2, 3])
  })

  it('inputs are bound by name, in any order', async () => {
    const r = await postJson(v2('/models/multi/infer'), {
      inputs: [...inputs].reverse(),
      outputs: [{ name: 'yb' }],
    })
    expect(r.status, r.text).toBe(200)
    expect(json(r).outputs).toEqual([{ name: 'yb', datatype: 'FP32', shape: [2], data: [4, 5] }])
  })

  it('an output the model does not have is a 400 error', async () => {
    expectV2Error(
      await postJson(v2('/models/multi/infer'), { inputs, outputs: [{ name: 'nope' }] }),
      400,
    )
  })
})

// Spec "Inference Response JSON Error Object": a failed inference request "must be indicated by an
// HTTP error status (typically 400)" and the body is {"error": <error message string>}.
describe('infer errors', () => {
  const good = { name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }
  const infer = (body: unknown, model = 'id_FP32') => postJson(v2(`/models/${model}/infer`), body)

  it('unknown model: 404', async () => {
    expectV2Error(await infer({ inputs: [good] }, 'no-such-model'), 404)
  })

  it('unknown version: 404', async () => {
    expectV2Error(await postJson(v2('/models/id_FP32/versions/7/infer'), { inputs: [good] }), 404)
  })

  it('unknown input: 400', async () => {
    expectV2Error(await infer({ inputs: [{ ...good, name: 'nope' }] }), 400)
    expectV2Error(await infer({ inputs: [good, { ...good, name: 'nope' }] }), 400)
  })

  it('missing input: 400', async () => {
    expectV2Error(await infer({ inputs: [] }), 400)
    expectV2Error(
      await infer({ inputs: [{ name: 'a', shape: [1], datatype: 'FP32', data: [1] }] }, 'multi'),
      400,
    )
  })

  it('wrong datatype: 400', async () => {
    expectV2Error(await infer({ inputs: [{ ...good, datatype: 'FP64' }] }), 400)
    expectV2Error(await infer({ inputs: [{ ...good, datatype: 'INT32' }] }), 400)
    expectV2Error(await infer({ inputs: [{ ...good, datatype: 'FLOAT32' }] }), 400)
  })

  it('datatypes are case-sensitive ("All strings in all contexts are case-sensitive"): "fp32" is a 400', async () => {
    expectV2Error(await infer({ inputs: [{ ...good, datatype: 'fp32' }] }), 400)
  })

  it('shape and data that disagree: 400', async () => {
    expectV2Error(await infer({ inputs: [{ ...good, data: [1, 2, 3, 4, 5] }] }), 400)
    expectV2Error(await infer({ inputs: [{ ...good, data: [1, 2, 3, 4, 5, 6, 7] }] }), 400)
    expectV2Error(
      await infer({
        inputs: [
          {
            ...good,
            data: [
              [1, 2],
              [3, 4],
            ],
          },
        ],
      }),
      400,
    )
    expectV2Error(
      await infer({
        inputs: [
          {
            ...good,
            data: [
              [1, 2, 3],
              [4, 5],
            ],
          },
        ],
      }),
      400,
    )
  })

  // "Tensor Data" does not say what a nesting other than the shape's means. Triton's HTTP server
  // (ReadDataFromJsonHelper) flattens nested arrays row-major and checks only the element count;
  // so does modelgate: the shape wins, the data is read in row-major order. Ragged nesting is refused.
  it('nested data whose nesting is not the declared shape is read row-major, as Triton reads it', async () => {
    for (const data of [
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      [
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
      ],
    ]) {
      const r = await infer({ inputs: [{ ...good, data }] })
      expect(r.status, r.text).toBe(200)
      expect(json(r).outputs[0]).toMatchObject({ shape: [2, 3] })
      expect(flat(json(r).outputs[0].data)).toEqual([1, 2, 3, 4, 5, 6])
    }
  })

  it('a shape the model refuses (rank, fixed dim): 400', async () => {
    expectV2Error(await infer({ inputs: [{ ...good, shape: [6] }] }), 400)
    expectV2Error(await infer({ inputs: [{ ...good, shape: [3, 2] }] }, 'fixed'), 400)
    expectV2Error(await infer({ inputs: [{ ...good, shape: [1, 6] }] }), 400)
  })

  it('values that are not of the datatype: 400', async () => {
    const values = (dt: V2Datatype, data: unknown[]) => ({
      inputs: [{ name: 'x', shape: [1, 3], datatype: dt, data }],
    })
    expectV2Error(await infer(values('UINT8', [0, 1, 256]), 'id_UINT8'), 400)
    expectV2Error(await infer(values('INT8', [0, 1, -129]), 'id_INT8'), 400)
    expectV2Error(await infer(values('INT32', [0, 1, 1.5]), 'id_INT32'), 400)
    expectV2Error(await infer(values('FP32', [0, 1, 'one']), 'id_FP32'), 400)
    expectV2Error(await infer(values('BYTES', ['a', 'b', 3]), 'id_BYTES'), 400)
    expectV2Error(await infer(values('BOOL', [true, false, 'yes']), 'id_BOOL'), 400)
  })

  it('malformed JSON: 400', async () => {
    expectV2Error(await infer('{"inputs": [ {"name": "x", '), 400)
    expectV2Error(await infer('not json at all'), 400)
    expectV2Error(await infer(''), 400)
  })

  it('JSON that is not an inference request: 400', async () => {
    expectV2Error(await infer('[]'), 400)
    expectV2Error(await infer('{}'), 400)
    expectV2Error(await infer({ inputs: [{ name: 'x', datatype: 'FP32', data: [1, 2, 3] }] }), 400)
    expectV2Error(await infer({ inputs: [{ ...good, shape: [2, -3] }] }), 400)
  })

  // JSON.parse, and the exact parser used when a 16+ digit literal appears, take any depth; the
  // tensor decoder refuses nesting deeper than the rank before walking it.
  it('data nested 100,000 deep: 400, whichever JSON parser reads it', async () => {
    const deep = (inner: string) => '['.repeat(100_000) + inner + ']'.repeat(100_000)
    for (const data of [deep(''), deep('1'), deep('12345678901234567')]) {
      for (const parameters of ['{}', '{"seed": 12345678901234567}']) {
        const body = `{"parameters": ${parameters}, "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3], "data": ${data}}]}`
        expect(expectV2Error(await infer(body), 400)).toMatch(/nested more than 64 levels/)
      }
    }
    const deepObject = '{"a":'.repeat(100_000) + '12345678901234567' + '}'.repeat(100_000)
    expectV2Error(
      await infer(
        `{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3], "data": [${deepObject}, 2, 3, 4, 5, 6]}]}`,
      ),
      400,
    )
  })

  it('the server serves on after every error', async () => {
    const r = await infer({ inputs: [good] })
    expect(r.status, r.text).toBe(200)
    expect(flat(json(r).outputs[0].data)).toEqual([1, 2, 3, 4, 5, 6])
  })
})

describe('parseExactJson (the test helper) itself', () => {
  it('keeps integers beyond 2^53 as BigInt and everything else as JSON.parse does', () => {
    expect(
      parseExactJson(
        '[9007199254740993, -9223372036854775808, 1.5, "9007199254740993", true, null, {"a": {}}]',
      ),
    ).toEqual([
      9007199254740993n,
      -9223372036854775808n,
      1.5,
      '9007199254740993',
      true,
      null,
      { a: {} },
    ])
    expect(() => parseExactJson('[1,]')).toThrow()
    expect(
      rawDataLiterals('{"outputs":[{"name":"y","data":[[1, -2],[3,18446744073709551615]]}]}', 'y'),
    ).toEqual(['1', '-2', '3', '18446744073709551615'])
  })
})
