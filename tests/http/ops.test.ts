import { rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getJson, postJson, type JsonResponse } from '../support/api-client.js'
import { addConstModel, spinModel, writeModelFile, writeVersion } from '../support/models.js'
import { serve, serveListening, tempModelsDir } from '../support/servers.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

describe('ops endpoints', () => {
  let a: TestServer
  let b: TestServer
  beforeAll(async () => {
    a = await startTestServer(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
      // Every version broken: reported as failed, but it does not hold readiness for the others.
      await writeModelFile(`${dir}/broken/1.onnx`, 'garbage')
      await writeModelFile(`${dir}/empty/.keep`, '')
    })
    b = await startTestServer(async (dir) => {
      await writeVersion(dir, 'other', 1, addConstModel(2))
    })
  })
  afterAll(async () => {
    await a.close()
    await b.close()
  })

  it('answers liveness', async () => {
    expect(await getJson(`${a.url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } })
  })

  it('is ready once the initial load is done, listing each model', async () => {
    const r = await getJson(`${a.url}/readyz`)
    expect(r.status).toBe(200)
    expect(r.body).toEqual({
      ready: true,
      stateWriteFailing: false,
      models: {
        adder: { active: 1, status: 'serving' },
        broken: { active: null, status: 'failed' },
        empty: { active: null, status: 'empty' },
      },
    })
  })

  it('counts requests per model, version and status on a registry of its own', async () => {
    await postJson(`${a.url}/models/adder/predict`, { inputs: [[1, 2, 3, 4]] })
    await postJson(`${a.url}/models/adder/predict`, { inputs: [[1, 2, 3]] })
    await postJson(`${a.url}/models/nope/predict`, { inputs: [[1, 2, 3, 4]] })
    const res = await fetch(`${a.url}/metrics`)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await res.text()
    expect(text).toContain('modelgate_requests_total{model="adder",version="1",status="200"} 1')
    expect(text).toContain('modelgate_requests_total{model="adder",version="1",status="400"} 1')
    expect(text).toContain('modelgate_requests_total{model="_unknown",version="",status="404"} 1')
    expect(text).toMatch(/modelgate_request_duration_seconds_count\{model="adder",version="1"\} 1/)
    expect(text).toMatch(
      /modelgate_inference_duration_seconds_count\{model="adder",version="1"\} 1/,
    )
    expect(text).toContain('modelgate_in_flight_requests 0')
    expect(text).toContain('modelgate_active_version{model="adder"} 1')
    expect(text).toContain('process_resident_memory_bytes')
    // The second server saw none of these requests.
    const other = await (await fetch(`${b.url}/metrics`)).text()
    expect(other).not.toContain('model="adder"')
  })
})

describe('readiness before every model serves', () => {
  /** Writes `<dir>/<model>/` with v1 = a Loop that never ends, whose first gate stops at its time limit. */
  async function writeEndlessModel(dir: string, model: string): Promise<void> {
    await writeVersion(dir, model, 1, spinModel(1, 1e12))
    await writeFile(join(dir, model, 'model.json'), JSON.stringify({ gateTimeoutSeconds: 3 }))
  }

  /** Polls the three readiness answers until `check` holds for them, and returns them. */
  async function readinessWhen(
    url: string,
    model: string,
    check: (r: { readyz: JsonResponse; v2: JsonResponse; v2Model: JsonResponse }) => boolean,
    what: string,
  ) {
    let r!: { readyz: JsonResponse; v2: JsonResponse; v2Model: JsonResponse }
    await waitFor(async () => {
      const [readyz, v2, v2Model] = await Promise.all([
        getJson(`${url}/readyz`),
        getJson(`${url}/v2/health/ready`),
        getJson(`${url}/v2/models/${model}/ready`).catch(() => undefined),
      ])
      r = { readyz, v2, v2Model: v2Model! }
      return v2Model !== undefined && check(r)
    }, what)
    return r
  }

  it('answers /readyz 503 and V2 400 while a model has no version yet, then 200 once its gate is over', async () => {
    const dir = await tempModelsDir(async (models) => {
      await writeVersion(models, 'adder', 1, addConstModel(1))
      await writeEndlessModel(models, 'endless')
    })
    const t = await serveListening(dir)
    // The first gate of 'endless' cannot end before its 3 s limit: the model is loading that long.
    const loading = await readinessWhen(
      t.url,
      'endless',
      (r) => r.readyz.body.models?.endless?.status === 'loading',
      "'endless' to be loading",
    )
    expect(loading.readyz).toMatchObject({
      status: 503,
      body: { ready: false, models: { endless: { active: null, status: 'loading' } } },
    })
    expect(loading.v2).toMatchObject({ status: 400, body: { ready: false } })
    expect(loading.v2Model).toMatchObject({
      status: 400,
      body: { name: 'endless', ready: false },
    })

    await t.server.loaded
    // 'adder' may still be waiting on its file's stability window behind the 3 s gate of
    // 'endless' (one gate at a time): the first answer once both are decided.
    const r = await readinessWhen(
      t.url,
      'endless',
      (x) =>
        x.readyz.body.models?.adder?.status === 'serving' &&
        x.readyz.body.models?.endless?.status !== 'loading',
      "'adder' to serve and 'endless' to be decided",
    )
    // Rejected at its time limit: failed, which does not hold readiness for the others.
    expect(r.readyz).toMatchObject({
      status: 200,
      body: {
        ready: true,
        models: {
          adder: { active: 1, status: 'serving' },
          endless: { active: null, status: 'failed' },
        },
      },
    })
    expect(r.v2).toMatchObject({ status: 200, body: { ready: true } })
    expect(r.v2Model).toMatchObject({ status: 400, body: { name: 'endless', ready: false } })
    expect((await getJson(`${t.url}/v2/models/adder/ready`)).status).toBe(200)
  })

  it('turns not ready while a model that appears later has its first gate, and ready again after', async () => {
    const t = await serve(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
    })
    expect((await getJson(`${t.url}/readyz`)).status).toBe(200)
    const staging = join(dirname(t.modelsDir), 'staging')
    await writeEndlessModel(staging, 'late')
    await rename(join(staging, 'late'), join(t.modelsDir, 'late'))
    const loading = await readinessWhen(
      t.url,
      'late',
      (r) => r.readyz.body.models?.late?.status === 'loading',
      "'late' to be loading",
    )
    expect(loading.readyz).toMatchObject({
      status: 503,
      body: {
        ready: false,
        models: { adder: { status: 'serving' }, late: { status: 'loading' } },
      },
    })
    expect(loading.v2).toMatchObject({ status: 400, body: { ready: false } })
    const after = await readinessWhen(
      t.url,
      'late',
      (r) => r.readyz.body.models?.late?.status !== 'loading',
      "'late' to have its gate",
    )
    expect(after.readyz).toMatchObject({
      status: 200,
      body: { ready: true, models: { late: { status: 'failed' } } },
    })
    expect(after.v2.status).toBe(200)
  })
})

describe('readiness with a model whose every version was rejected', () => {
  it('stays ready through the periodic re-listings of that model (it is failed, not loading)', async () => {
    const t = await serve(
      async (dir) => {
        await writeVersion(dir, 'good', 1, addConstModel(1))
        await writeVersion(dir, 'broken', 1, 'not a model')
        // Skipped on every pass over the folder (logged at debug): counts the passes.
        await writeFile(join(dir, 'broken', 'notes.txt'), 'not a version')
      },
      { rescanMs: '100' },
    )
    // Its first gate (the bytes were just written: read early, then again once stable) is
    // loading, rightly; what follows is re-listing only.
    await waitFor(
      async () => (await getJson(`${t.url}/readyz`)).body.models.broken?.status === 'failed',
      "'broken' to be judged",
    )
    const passes = () =>
      t.logs.filter((l) => l.event === 'path_ignored' && String(l.path).endsWith('notes.txt'))
        .length
    const statuses: number[] = []
    const start = passes()
    while (passes() < start + 10) statuses.push((await fetch(`${t.url}/readyz`)).status)
    expect(statuses.length).toBeGreaterThan(10)
    expect(statuses.filter((s) => s !== 200)).toEqual([])
    expect((await getJson(`${t.url}/readyz`)).body.models.broken).toEqual({
      active: null,
      status: 'failed',
    })
  })
})
