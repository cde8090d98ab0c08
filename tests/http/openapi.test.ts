import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpApp } from '../../dist/http/app.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { getJson, startTestServer, type TestServer } from '../support/test-server.js'

/** Every route the Hono app registers, as OpenAPI writes it: `/models/{name}`, lowercase method. */
function registeredRoutes(): { path: string; method: string }[] {
  // Only the route table is read: the handlers never run, so their dependencies can be stand-ins.
  const deps = new Proxy({}, { get: () => undefined }) as never
  const app = createHttpApp({ predictor: deps, registry: deps, metrics: deps, readiness: () => ({ ready: true, stateWriteFailing: false, models: {} }), maxBodyBytes: 1, logger: deps, lifecycle: deps, adminToken: undefined })
  const routes = app.routes
    .filter((r) => r.method !== 'ALL' && !r.path.includes('*'))
    .map((r) => ({ path: r.path.replace(/:(\w+)/g, '{$1}'), method: r.method.toLowerCase() }))
  return [...new Map(routes.map((r) => [`${r.method} ${r.path}`, r])).values()]
}

describe('OpenAPI document', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
    })
  })
  afterAll(() => t.close())

  it('is OpenAPI 3.1 and lists every route the server answers, with its method', async () => {
    const { status, body } = await getJson(`${t.url}/openapi.json`)
    expect(status).toBe(200)
    expect(body.openapi).toBe('3.1.0')
    const routes = registeredRoutes()
    expect(routes.length).toBeGreaterThan(25)
    for (const r of routes) expect(body.paths[r.path]?.[r.method], `${r.method.toUpperCase()} ${r.path}`).toBeDefined()
    // ... and nothing the server does not answer.
    const documented = Object.entries(body.paths as Record<string, object>).flatMap(([p, ms]) => Object.keys(ms).map((m) => `${m} ${p}`))
    expect(documented.sort()).toEqual(routes.map((r) => `${r.method} ${r.path}`).sort())
  })

  it('describes request bodies with the schemas that validate them', async () => {
    const { body } = await getJson(`${t.url}/openapi.json`)
    const predict = body.paths['/predict'].post.requestBody.content['application/json'].schema
    expect(predict.required).toEqual(['inputs'])
    expect(predict.additionalProperties).toBe(false)
    expect(predict.properties.output_format.enum).toEqual(['nested', 'typed'])
    const infer = body.paths['/v2/models/{name}/infer'].post
    expect(infer.requestBody.content['application/json'].schema.required).toEqual(['inputs'])
    expect(infer.requestBody.content['application/octet-stream']).toBeDefined()
    expect(body.paths['/models/{name}/promote'].post.security).toEqual([{ adminToken: [] }])
    // The validator and the document agree: a body the schema forbids is refused.
    const refused = await fetch(`${t.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs": [[1,2,3,4]], "extra": 1}' })
    expect(refused.status).toBe(400)
  })

  it('serves a page for people', async () => {
    const res = await fetch(`${t.url}/docs`)
    expect(res.headers.get('content-type')).toMatch(/text\/html/)
    const html = await res.text()
    expect(html).toContain('POST /v2/models/{name}/infer')
    expect(html).toContain('/openapi.json')
  })
})
