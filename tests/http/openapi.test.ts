import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpApp } from '../../src/http/app.js'
import { promoteBodySchema, rollbackBodySchema } from '../../src/http/routes/admin-routes.js'
import { inProcess } from '../support/in-process.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

/** Every route the Hono app registers, as OpenAPI writes it: `/models/{name}`, lowercase method. */
function registeredRoutes(): { path: string; method: string }[] {
  // Only the route table is read: the handlers never run, so their dependencies can be stand-ins.
  const deps = new Proxy({}, { get: () => undefined }) as never
  const app = createHttpApp({
    predictor: deps,
    feedback: deps,
    live: deps,
    registry: deps,
    metrics: deps,
    readiness: () => ({ ready: true, stateWriteFailing: false, models: {} }),
    maxBodyBytes: 1,
    logger: deps,
    lifecycle: deps,
    adminToken: undefined,
    eventStreams: deps,
  })
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
    const { status, body } = await inProcess(t)('/openapi.json')
    expect(status).toBe(200)
    expect(body.openapi).toBe('3.1.0')
    const routes = registeredRoutes()
    expect(routes.length).toBeGreaterThan(25)
    for (const r of routes)
      expect(body.paths[r.path]?.[r.method], `${r.method.toUpperCase()} ${r.path}`).toBeDefined()
    // ... and nothing the server does not answer.
    const documented = Object.entries(body.paths as Record<string, object>).flatMap(([p, ms]) =>
      Object.keys(ms).map((m) => `${m} ${p}`),
    )
    expect(documented.sort()).toEqual(routes.map((r) => `${r.method} ${r.path}`).sort())
  })

  it('describes request bodies with the schemas that validate them', async () => {
    const { body } = await inProcess(t)('/openapi.json')
    const predict = body.paths['/predict'].post.requestBody.content['application/json'].schema
    expect(predict.required).toEqual(['inputs'])
    expect(predict.additionalProperties).toBe(false)
    expect(predict.properties.output_format.enum).toEqual(['nested', 'typed'])
    const infer = body.paths['/v2/models/{name}/infer'].post
    expect(infer.requestBody.content['application/json'].schema.required).toEqual(['inputs'])
    expect(infer.requestBody.content['application/octet-stream']).toBeDefined()
    expect(body.paths['/models/{name}/promote'].post.security).toEqual([{ adminToken: [] }])
    // The validator and the document agree: a body the schema forbids is refused (on the fast path).
    const refused = await fetch(`${t.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs": [[1,2,3,4]], "extra": 1}',
    })
    expect(refused.status).toBe(400)
  })

  it('serves a page for people', async () => {
    const res = await t.server.app.request('/docs')
    expect(res.headers.get('content-type')).toMatch(/text\/html/)
    const html = await res.text()
    expect(html).toContain('POST /v2/models/{name}/infer')
    expect(html).toContain('/openapi.json')
  })
})

/** Same keys (objects), same element shape (arrays, by their first element), same JSON types. */
function sameShape(actual: unknown, example: unknown, path = '$'): string | undefined {
  if (Array.isArray(example)) {
    if (!Array.isArray(actual)) return `${path}: expected an array`
    if (example.length === 0 || actual.length === 0) return undefined
    return sameShape(actual[0], example[0], `${path}[0]`)
  }
  if (example !== null && typeof example === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual))
      return `${path}: expected an object`
    const a = Object.keys(actual).sort().join(',')
    const e = Object.keys(example).sort().join(',')
    if (a !== e) return `${path}: keys ${a} but the example has ${e}`
    for (const key of Object.keys(example)) {
      const problem = sameShape(
        (actual as Record<string, unknown>)[key],
        (example as Record<string, unknown>)[key],
        `${path}.${key}`,
      )
      if (problem) return problem
    }
    return undefined
  }
  return typeof actual === typeof example
    ? undefined
    : `${path}: ${typeof actual}, the example has ${typeof example}`
}

describe('OpenAPI examples', () => {
  let t: TestServer
  beforeAll(async () => {
    // The examples are of the bundled iris model: run them against it.
    t = await startTestServer(async (dir) => {
      await cp(join(import.meta.dirname, '..', '..', 'models', 'iris'), join(dir, 'iris'), {
        recursive: true,
      })
    })
  })
  afterAll(() => t.close())

  it('every example of a data-plane route is what the server answers to it, and /docs shows it', async () => {
    const { body: doc } = await inProcess(t)('/openapi.json')
    const html = await (await t.server.app.request('/docs')).text()
    let checked = 0
    for (const [path, methods] of Object.entries(
      doc.paths as Record<string, Record<string, any>>,
    )) {
      for (const [method, op] of Object.entries(methods)) {
        const request = op.requestBody?.content?.['application/json']?.example
        const response = op.responses?.['200']?.content?.['application/json']?.example
        if (response === undefined) continue
        expect(html).toContain(
          JSON.stringify(response, null, 2).replace(/"/g, '&quot;').split('\n')[1],
        )
        if (op.security) continue // admin examples change state: checked against their schemas below
        const target = path.replace('{name}', 'iris').replace('{version}', '2')
        const init: RequestInit = {
          method: method.toUpperCase(),
          ...(request !== undefined && {
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(request),
          }),
        }
        // Simple-API predictions take the listener's fast path; every other route is the Hono app's.
        const res =
          method === 'post' && path.endsWith('/predict')
            ? await fetch(`${t.url}${target}`, init)
            : await t.server.app.request(target, init)
        expect(res.status, `${method} ${path}`).toBe(200)
        const answer = await res.json()
        expect(
          sameShape(answer, response),
          `${method} ${path}: ${JSON.stringify(answer)}`,
        ).toBeUndefined()
        checked++
      }
    }
    expect(checked).toBeGreaterThanOrEqual(12)
  })

  it('admin examples are bodies the admin routes accept', async () => {
    const { body: doc } = await inProcess(t)('/openapi.json')
    expect(
      rollbackBodySchema.safeParse(
        doc.paths['/models/{name}/rollback'].post.requestBody.content['application/json'].example,
      ).success,
    ).toBe(true)
    expect(
      promoteBodySchema.safeParse(
        doc.paths['/models/{name}/promote'].post.requestBody.content['application/json'].example,
      ).success,
    ).toBe(true)
  })

  it('documents the statuses the server really answers when not ready', async () => {
    const { body: doc } = await inProcess(t)('/openapi.json')
    expect(Object.keys(doc.paths['/v2/models/{name}/ready'].get.responses)).toContain('400')
    expect(Object.keys(doc.paths['/v2/health/ready'].get.responses)).toContain('400')
    expect(Object.keys(doc.paths['/readyz'].get.responses)).toContain('503')
    // A version that is not loaded is not ready: 400, as documented.
    expect((await t.server.app.request('/v2/models/iris/versions/1/ready')).status).toBe(400) // on disk, not loaded
  })
})
