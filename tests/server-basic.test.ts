import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addConstModel, writeVersion } from './support/models.js'
import { getJson, postJson, startTestServer, type TestServer } from './support/test-server.js'

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
    expect(r.body).toEqual({ model: 'adder', version: 2, outputs: { y: [[3, 4, 5, 6]] } })
  })

  it('records why version 3 was rejected', async () => {
    const r = await getJson(`${t.url}/models/adder`)
    expect(r.body.active).toBe(2)
    const v3 = r.body.versions.find((v: { version: number }) => v.version === 3)
    expect(v3).toMatchObject({ status: 'rejected', stage: 'load', reason: 'invalid_model' })
    expect(v3.message).toMatch(/protobuf parsing failed/i)
  })
})
