import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addConstModel, writeModelFile, writeVersion } from '../support/models.js'
import { getJson, postJson, startTestServer, type TestServer } from '../support/test-server.js'

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
    expect(text).toMatch(/modelgate_inference_duration_seconds_count\{model="adder",version="1"\} 1/)
    expect(text).toContain('modelgate_in_flight_requests 0')
    expect(text).toContain('modelgate_active_version{model="adder"} 1')
    expect(text).toContain('process_resident_memory_bytes')
    // The second server saw none of these requests.
    const other = await (await fetch(`${b.url}/metrics`)).text()
    expect(other).not.toContain('model="adder"')
  })
})
