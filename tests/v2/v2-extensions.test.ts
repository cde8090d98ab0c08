import { stat, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addConstModel, writeVersion } from '../support/models.js'
import { dropVersion } from '../support/staging.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'
import { get, http, postJson, v2Error, type RawResponse } from './v2-support.js'

/**
 * Triton's model repository and statistics extensions, against the real server.
 * https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md
 * https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_statistics.md
 */

const GARBAGE = 'this is not an ONNX model'
const x1 = (v = 1) => ({
  inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [v, v, v, v] }],
})

function json(r: RawResponse): any {
  return JSON.parse(r.text)
}

function expectV2Error(r: RawResponse, status: number): string {
  expect(r.status, r.text).toBe(status)
  expect(r.headers['content-type']).toMatch(/^application\/json/)
  return v2Error(r)
}

interface IndexEntry {
  name: string
  version?: string
  state: string
  reason: string
}

describe('model repository extension', () => {
  let t: TestServer
  const v2 = (path: string) => `${t.url}/v2${path}`
  const index = async (body?: string): Promise<IndexEntry[]> => {
    const r = await http(
      'POST',
      v2('/repository/index'),
      body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } },
    )
    expect(r.status, r.text).toBe(200)
    return json(r) as IndexEntry[]
  }
  const entry = (entries: IndexEntry[], name: string, version: string) =>
    entries.find((e) => e.name === name && e.version === version)

  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
      await writeVersion(dir, 'versioned', 1, addConstModel(1))
      await writeVersion(dir, 'versioned', 2, addConstModel(2))
      await writeVersion(dir, 'broken', 1, GARBAGE)
      await writeVersion(dir, 'cycled', 1, addConstModel(10))
    })
  }, 120_000)
  afterAll(() => t?.close())

  // "Index": POST v2/repository/index; $repository_index_request = {"ready": $boolean #optional};
  // $repository_index_response = [{name, version #optional, state, reason}]; "every model available
  // in a model repository, even if it is not currently loaded".
  it('index lists every version with its state: READY when it serves, UNAVAILABLE otherwise', async () => {
    const entries = await index('{}')
    for (const e of entries) {
      expect(typeof e.name).toBe('string')
      expect(typeof e.version).toBe('string')
      expect(['READY', 'UNAVAILABLE', 'LOADING', 'UNLOADING']).toContain(e.state)
      expect(typeof e.reason).toBe('string')
    }
    expect(entry(entries, 'adder', '1')?.state).toBe('READY')
    expect(entry(entries, 'versioned', '2')?.state).toBe('READY')
    expect(entry(entries, 'versioned', '1')?.state).toBe('UNAVAILABLE')
    const broken = entry(entries, 'broken', '1')
    expect(broken?.state).toBe('UNAVAILABLE')
    expect(broken?.reason.length, 'a rejected version says why').toBeGreaterThan(0)
  })

  it('index with {"ready": true} lists only versions ready for inferencing', async () => {
    const ready = await index('{"ready": true}')
    expect(ready.length).toBeGreaterThan(0)
    for (const e of ready) expect(e.state).toBe('READY')
    expect(entry(ready, 'adder', '1')).toBeDefined()
    expect(entry(ready, 'versioned', '2')).toBeDefined()
    expect(entry(ready, 'versioned', '1')).toBeUndefined()
    expect(ready.some((e) => e.name === 'broken')).toBe(false)
    const all = await index('{"ready": false}')
    expect(all.length).toBeGreaterThan(ready.length)
  })

  it('index with an empty body (as tritonclient sends it) lists everything', async () => {
    const entries = await index('')
    expect(entry(entries, 'broken', '1')).toBeDefined()
    expect(await index()).toEqual(entries)
  })

  it('index with a malformed body: an error object', async () => {
    const r = await http('POST', v2('/repository/index'), {
      body: '{"ready": ',
      headers: { 'content-type': 'application/json' },
    })
    expect(r.status).toBeGreaterThanOrEqual(400)
    v2Error(r)
  })

  // "Unload": POST v2/repository/models/${MODEL_NAME}/unload, 200 on success; "Load": "requests that
  // a model be loaded ... or reloaded if the model is already loaded", 200 on success.
  it('unload: the model stops answering inferences (503) and is not ready; load: it serves again', async () => {
    const before = await postJson(v2('/models/cycled/infer'), x1())
    expect(before.status, before.text).toBe(200)

    const unload = await http('POST', v2('/repository/models/cycled/unload'), {
      body: '{"parameters": {"unload_dependents": false}}',
    })
    expect(unload.status, unload.text).toBe(200)

    expectV2Error(await postJson(v2('/models/cycled/infer'), x1()), 503)
    expect((await get(v2('/models/cycled/ready'))).status).not.toBe(200)
    expect((await get(v2('/models/cycled/versions/1/ready'))).status).not.toBe(200)
    expect(entry(await index('{}'), 'cycled', '1')?.state).toBe('UNAVAILABLE')
    expect(entry(await index('{"ready": true}'), 'cycled', '1')).toBeUndefined()
    // The other models are not touched, and the server stays ready: an unloaded model is not one
    // of "all the models" server ready speaks of (Triton: only loaded models count).
    expect((await postJson(v2('/models/adder/infer'), x1())).status).toBe(200)
    expect((await get(v2('/health/ready'))).status).toBe(200)

    const load = await http('POST', v2('/repository/models/cycled/load'), { body: '{}' })
    expect(load.status, load.text).toBe(200)
    expect((await get(v2('/models/cycled/ready'))).status).toBe(200)
    const after = await postJson(v2('/models/cycled/infer'), x1())
    expect(after.status, after.text).toBe(200)
    expect(json(after).outputs[0].data).toEqual([11, 11, 11, 11])
    expect(entry(await index('{}'), 'cycled', '1')?.state).toBe('READY')
  })

  it('load of a model that is already loaded succeeds and it keeps serving', async () => {
    const load = await http('POST', v2('/repository/models/adder/load'), { body: '' })
    expect(load.status, load.text).toBe(200)
    expect((await postJson(v2('/models/adder/infer'), x1())).status).toBe(200)
  })

  it('load of a model no version of which can load: an error object', async () => {
    const r = await http('POST', v2('/repository/models/broken/load'), { body: '{}' })
    expect(r.status).toBeGreaterThanOrEqual(400)
    v2Error(r)
  })

  it('load and unload of a model that does not exist: 404 error objects', async () => {
    expectV2Error(
      await http('POST', v2('/repository/models/no-such-model/load'), { body: '{}' }),
      404,
    )
    expectV2Error(
      await http('POST', v2('/repository/models/no-such-model/unload'), { body: '{}' }),
      404,
    )
  })

  it('load serves a model whose version folder was renamed into the repository since the last scan', async () => {
    // The README's way to ship a version: build it beside, rename it in (a rename is complete).
    await dropVersion(t.modelsDir, 'newcomer', 1, addConstModel(5))
    const r = await http('POST', v2('/repository/models/newcomer/load'), { body: '{}' })
    expect(r.status, r.text).toBe(200)
    const infer = await postJson(v2('/models/newcomer/infer'), x1())
    expect(infer.status, infer.text).toBe(200)
    expect(json(infer).outputs[0].data).toEqual([6, 6, 6, 6])
  })
})

// "Load": "requests that a model be loaded" — the usual flow with Triton's explicit model control:
// copy the model into the repository, then call load. The copy is complete when load is called.
describe('model repository extension: load right after a version file is copied in', () => {
  let t: TestServer
  beforeAll(async () => {
    // A stability window long enough that the load below always lands inside it.
    t = await startTestServer(
      async (dir) => {
        await writeVersion(dir, 'adder', 1, addConstModel(1))
      },
      { stabilityMs: '2000' },
    )
  }, 120_000)
  afterAll(() => t?.close())

  it('load answers 200 and the model serves (not 503 while modelgate waits for the file to settle)', async () => {
    const file = await writeVersion(t.modelsDir, 'copied', 1, addConstModel(7))
    // As a `cp` of a larger file leaves it: the file's mtime after its folder's ctime (the copy
    // ended after it began). Touched until the clock has moved past the folder's ctime.
    const folder = dirname(file)
    await waitFor(async () => {
      await utimes(file, new Date(), new Date())
      return (await stat(file)).mtimeMs > (await stat(folder)).ctimeMs
    }, 'the file to be newer than its folder')
    const r = await http('POST', `${t.url}/v2/repository/models/copied/load`, { body: '{}' })
    expect(r.status, r.text).toBe(200)
    const infer = await postJson(`${t.url}/v2/models/copied/infer`, x1())
    expect(infer.status, infer.text).toBe(200)
    expect(json(infer).outputs[0].data).toEqual([8, 8, 8, 8])
  })
})

describe('model repository extension with MODELGATE_ADMIN_TOKEN set', () => {
  const TOKEN = 'v2-admin-secret-token-0123456789'
  let t: TestServer
  const v2 = (path: string) => `${t.url}/v2${path}`

  beforeAll(async () => {
    t = await startTestServer(
      async (dir) => {
        await writeVersion(dir, 'adder', 1, addConstModel(1))
      },
      {},
      { MODELGATE_ADMIN_TOKEN: TOKEN },
    )
  }, 120_000)
  afterAll(() => t?.close())

  it('every repository route answers 401 with an error object without the token, or with a wrong one', async () => {
    for (const path of [
      '/repository/index',
      '/repository/models/adder/unload',
      '/repository/models/adder/load',
    ]) {
      expectV2Error(await http('POST', v2(path), { body: '{}' }), 401)
      expectV2Error(
        await http('POST', v2(path), { body: '{}', headers: { authorization: 'Bearer wrong' } }),
        401,
      )
    }
    // Nothing was unloaded.
    expect((await postJson(v2('/models/adder/infer'), x1())).status).toBe(200)
  })

  it('with "Authorization: Bearer <token>" they work; inference and metadata need no token', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` }
    const r = await http('POST', v2('/repository/index'), { body: '{}', headers: auth })
    expect(r.status, r.text).toBe(200)
    expect(json(r)).toEqual([
      expect.objectContaining({ name: 'adder', version: '1', state: 'READY' }),
    ])
    expect(
      (await http('POST', v2('/repository/models/adder/unload'), { body: '{}', headers: auth }))
        .status,
    ).toBe(200)
    expect((await get(v2('/models/adder/ready'))).status).not.toBe(200)
    expect(
      (await http('POST', v2('/repository/models/adder/load'), { body: '{}', headers: auth }))
        .status,
    ).toBe(200)
    expect((await get(v2('/models/adder/ready'))).status).toBe(200)
    expect((await postJson(v2('/models/adder/infer'), x1())).status).toBe(200)
    expect((await get(v2('/models/adder'))).status).toBe(200)
    expect((await get(v2('/models/adder/stats'))).status).toBe(200)
  })
})

// Statistics extension: GET v2/models[/${MODEL_NAME}[/versions/${MODEL_VERSION}]]/stats ->
// {"model_stats": [$model_stat]}; $model_stat = {name, version, last_inference, inference_count,
// execution_count, inference_stats, batch_stats}; $inference_stats = {success, fail, queue,
// compute_input, compute_infer, compute_output, cache_hit}; $duration_stat = {count, ns}.
describe('statistics extension', () => {
  let t: TestServer
  const v2 = (path: string) => `${t.url}/v2${path}`
  const statsOf = async (path: string) => {
    const r = await get(v2(path))
    expect(r.status, r.text).toBe(200)
    return json(r).model_stats as any[]
  }
  const one = async (model: string) => {
    const stats = await statsOf(`/models/${model}/stats`)
    expect(stats).toHaveLength(1)
    return stats[0]
  }

  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeVersion(dir, 'counted', 1, addConstModel(1))
      await writeVersion(dir, 'batched', 1, addConstModel(1))
      // Sixteen rows fill a batch, and a lone request waits up to a second for company.
      await writeVersion(dir, 'batched16', 1, addConstModel(1))
      await writeFile(
        join(dir, 'batched16', 'model.json'),
        JSON.stringify({ batching: { maxBatchSize: 16, maxDelayMs: 1000 } }),
      )
      await writeVersion(dir, 'unbatched', 1, addConstModel(1))
      await writeFile(
        join(dir, 'unbatched', 'model.json'),
        JSON.stringify({ batching: { enabled: false } }),
      )
      await writeVersion(dir, 'other', 1, addConstModel(3))
      await writeVersion(dir, 'versioned', 1, addConstModel(1))
      await writeVersion(dir, 'versioned', 2, addConstModel(2))
    })
  }, 120_000)
  afterAll(() => t?.close())

  it('GET v2/models/stats: one entry per loaded model version, with the field names of the extension', async () => {
    const stats = await statsOf('/models/stats')
    const names = stats.map((s) => `${s.name}/${s.version}`).sort()
    expect(names).toEqual(
      expect.arrayContaining(['batched/1', 'counted/1', 'other/1', 'unbatched/1', 'versioned/2']),
    )
    for (const s of stats) {
      expect(typeof s.name).toBe('string')
      expect(typeof s.version).toBe('string')
      for (const key of ['last_inference', 'inference_count', 'execution_count'])
        expect(typeof s[key], key).toBe('number')
      for (const key of ['success', 'fail', 'queue', 'compute_infer']) {
        expect(s.inference_stats[key], key).toEqual({
          count: expect.any(Number),
          ns: expect.any(Number),
        })
      }
    }
  })

  it('every field of $model_stat and $inference_stats is there (batch_stats, compute_input, compute_output, cache_hit)', async () => {
    const s = await one('other')
    expect(Array.isArray(s.batch_stats), 'batch_stats: [$batch_stat]').toBe(true)
    for (const key of [
      'success',
      'fail',
      'queue',
      'compute_input',
      'compute_infer',
      'compute_output',
      'cache_hit',
    ]) {
      expect(s.inference_stats[key], `inference_stats.${key}`).toEqual({
        count: expect.any(Number),
        ns: expect.any(Number),
      })
    }
  })

  it('GET v2/models/{m}/stats and /versions/{v}/stats select that model and version', async () => {
    const model = await statsOf('/models/versioned/stats')
    expect(model.map((s) => s.name)).toEqual(model.map(() => 'versioned'))
    expect(model.map((s) => s.version)).toContain('2')
    const version = await statsOf('/models/versioned/versions/2/stats')
    expect(version).toHaveLength(1)
    expect(version[0]).toMatchObject({ name: 'versioned', version: '2' })
  })

  it('unknown model, or a version that is not loaded: an error object', async () => {
    expectV2Error(await get(v2('/models/no-such-model/stats')), 404)
    const r = await get(v2('/models/versioned/versions/9/stats'))
    expect(r.status).toBeGreaterThanOrEqual(400)
    v2Error(r)
    const notLoaded = await get(v2('/models/versioned/versions/1/stats'))
    expect(notLoaded.status).toBeGreaterThanOrEqual(400)
    v2Error(notLoaded)
  })

  it('counts go up with successful and failed inferences; other models are not touched', async () => {
    const before = await one('counted')
    const otherBefore = await one('other')
    const startedAt = Date.now()
    for (let i = 0; i < 3; i++)
      expect((await postJson(v2('/models/counted/infer'), x1(i))).status).toBe(200)
    // Two failures on the model itself: a fixed dim it refuses, and an unknown input.
    expect(
      (
        await postJson(v2('/models/counted/infer'), {
          inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }],
        })
      ).status,
    ).toBe(400)
    expect(
      (
        await postJson(v2('/models/counted/infer'), {
          inputs: [{ name: 'nope', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
        })
      ).status,
    ).toBe(400)
    const after = await one('counted')
    const d = (path: (s: any) => number) => path(after) - path(before)
    expect(d((s) => s.inference_stats.success.count)).toBe(3)
    expect(d((s) => s.inference_stats.fail.count)).toBe(2)
    expect(d((s) => s.inference_count)).toBe(3)
    expect(d((s) => s.execution_count)).toBe(3)
    expect(d((s) => s.inference_stats.compute_infer.count)).toBe(3)
    expect(d((s) => s.inference_stats.queue.count)).toBe(3)
    expect(d((s) => s.inference_stats.success.ns)).toBeGreaterThan(0)
    expect(d((s) => s.inference_stats.fail.ns)).toBeGreaterThanOrEqual(0)
    expect(d((s) => s.inference_stats.compute_infer.ns)).toBeGreaterThan(0)
    // "last_inference": "The timestamp of the last inference request ... as milliseconds since the epoch."
    expect(after.last_inference).toBeGreaterThanOrEqual(startedAt)
    expect(after.last_inference).toBeLessThanOrEqual(Date.now())
    expect(await one('other')).toEqual(otherBefore)
  })

  it('a request to /versions/{v}/infer counts on that version', async () => {
    const before = (await statsOf('/models/versioned/versions/2/stats'))[0]
    expect((await postJson(v2('/models/versioned/versions/2/infer'), x1())).status).toBe(200)
    const after = (await statsOf('/models/versioned/versions/2/stats'))[0]
    expect(after.inference_stats.success.count - before.inference_stats.success.count).toBe(1)
  })

  // "inference_count": "Each inference in a batched request is counted as an individual inference.
  // For example, if a client sends a single inference request with batch size 64, "inference_count"
  // will be incremented by 64." "execution_count" counts model executions.
  it('inference_count counts each inference of a batched request; execution_count counts the run', async () => {
    const before = await one('batched')
    const batch = {
      inputs: [
        {
          name: 'x',
          shape: [3, 4],
          datatype: 'FP32',
          data: Array.from({ length: 12 }, (_, i) => i),
        },
      ],
    }
    expect((await postJson(v2('/models/batched/infer'), batch)).status).toBe(200)
    const after = await one('batched')
    expect(after.inference_stats.success.count - before.inference_stats.success.count).toBe(1)
    expect(after.execution_count - before.execution_count).toBe(1)
    expect(after.inference_count - before.inference_count).toBe(3)
  })

  // "execution_count": when "the dynamic batcher batches them into a single large batch for model
  // execution then "execution_count" will be incremented by 1".
  it('concurrent requests batched together: success counts each request, execution_count the runs', async () => {
    // batched16 holds its first request until sixteen rows are queued (or a second has passed):
    // sixteen concurrent one-row requests make one run of sixteen.
    const before = await one('batched16')
    const n = 16
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => postJson(v2('/models/batched16/infer'), x1(i))),
    )
    results.forEach((r, i) => {
      expect(r.status).toBe(200)
      expect(json(r).outputs[0].data).toEqual([i + 1, i + 1, i + 1, i + 1])
    })
    const after = await one('batched16')
    expect(after.inference_stats.success.count - before.inference_stats.success.count).toBe(n)
    expect(after.inference_count - before.inference_count).toBe(n)
    expect(after.execution_count - before.execution_count).toBe(1)
    expect(
      after.inference_stats.compute_infer.count - before.inference_stats.compute_infer.count,
    ).toBe(1)
    expect(after.batch_stats).toEqual([
      expect.objectContaining({
        batch_size: 16,
        compute_infer: expect.objectContaining({ count: 1 }),
      }),
    ])
  })

  it('a model that never batches counts every request as its own execution', async () => {
    await waitFor(
      async () => (await get(v2('/models/unbatched/ready'))).status === 200,
      'unbatched to be ready',
    )
    const before = await one('unbatched')
    for (let i = 0; i < 2; i++)
      expect((await postJson(v2('/models/unbatched/infer'), x1(i))).status).toBe(200)
    const after = await one('unbatched')
    expect(after.inference_stats.success.count - before.inference_stats.success.count).toBe(2)
    expect(after.execution_count - before.execution_count).toBe(2)
    expect(
      after.inference_stats.compute_infer.count - before.inference_stats.compute_infer.count,
    ).toBe(2)
  })
})
