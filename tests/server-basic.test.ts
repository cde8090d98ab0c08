import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getJson, postJson } from './support/api-client.js'
import { addConstModel, writeVersion } from './support/models.js'
import { serve } from './support/servers.js'
import { startTestServer, type TestServer } from './support/test-server.js'

describe('serving the highest loadable version', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
      await writeVersion(dir, 'adder', 2, addConstModel(2))
      await writeVersion(dir, 'adder', 3, 'not a model at all')
    })
  })
  afterAll(() => t.close())

  it('serves version 2 when version 3 does not load', async () => {
    const r = await postJson(`${t.url}/predict`, { inputs: [[1, 2, 3, 4]] })
    expect(r.status).toBe(200)
    expect(r.headers.get('x-model-version')).toBe('2')
    expect(r.body).toEqual({
      id: expect.any(String),
      model: 'adder',
      version: 2,
      outputs: { y: [[3, 4, 5, 6]] },
    })
  })

  it('records why version 3 was rejected', async () => {
    const r = await getJson(`${t.url}/models/adder`)
    expect(r.body.active).toBe(2)
    const v3 = r.body.versions.find((v: { version: number }) => v.version === 3)
    expect(v3).toMatchObject({ status: 'rejected', stage: 'load', reason: 'invalid_model' })
    expect(v3.message).toMatch(/protobuf parsing failed/i)
  })
})

describe('listening beyond this machine without an admin token', () => {
  const warned = (t: TestServer) =>
    t.logs.some((r) => r.event === 'admin_loopback_only' && r.level === 'warn')

  it('says once, at start, that admin routes answer loopback clients only', async () => {
    const t = await serve(() => undefined, { host: '0.0.0.0' })
    expect(t.logs.filter((r) => r.event === 'admin_loopback_only')).toHaveLength(1)
  })

  it('says nothing on loopback, or with a token', async () => {
    const local = await serve(() => undefined)
    const withToken = await serve(
      () => undefined,
      { host: '0.0.0.0' },
      { MODELGATE_ADMIN_TOKEN: 'a-token-of-sixteen-chars' },
    )
    expect(warned(local)).toBe(false)
    expect(warned(withToken)).toBe(false)
  })
})
