import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requestJson, type JsonResponse } from '../support/api-client.js'
import { inProcess } from '../support/in-process.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

/**
 * A malformed percent-escape in a path segment ('%E0%A4%A' cut short, '%ff' which is not UTF-8)
 * is the client's mistake: 400 invalid_request naming the segment, on every route family. It was
 * a 500 (URIError) on the predict fast path, and elsewhere the undecodable text was looked up as a
 * model name.
 */

let t: TestServer
beforeAll(async () => {
  t = await startTestServer(async (dir) => {
    await writeVersion(dir, 'm', 1, addConstModel(1))
    await writeVersion(dir, 'a.b-c', 1, addConstModel(2))
  })
})
afterAll(() => t?.close())

const PREDICT = JSON.stringify({ inputs: [[1, 2, 3, 4]] })
const INFER = JSON.stringify({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
})

function send(method: string, path: string): Promise<JsonResponse> {
  // A good body where the route takes one: only the path is wrong.
  const body = path.endsWith('/infer') ? INFER : path.endsWith('/predict') ? PREDICT : undefined
  const init = {
    method,
    ...(body !== undefined && { body, headers: { 'content-type': 'application/json' } }),
  }
  // Simple-API predictions take the listener's fast path; every other route is the Hono app's.
  return method === 'POST' && path.endsWith('/predict')
    ? requestJson(`${t.url}${path}`, init)
    : inProcess(t)(path, init)
}

/** Each route family, with a malformed segment where a name or version goes. */
const CASES: [family: string, method: string, path: string, segment: string][] = [
  ['simple predict (fast path), model', 'POST', '/models/%E0%A4%A/predict', '%E0%A4%A'],
  ['simple predict (fast path), version', 'POST', '/models/x/versions/%ff/predict', '%ff'],
  [
    'simple predict (fast path), a good model and a bad version',
    'POST',
    '/models/m/versions/1%/predict',
    '1%',
  ],
  ['model routes', 'GET', '/models/%E0%A4%A', '%E0%A4%A'],
  ['admin: history', 'GET', '/models/%ff/history', '%ff'],
  ['admin: rollback', 'POST', '/models/%C3/rollback', '%C3'],
  ['admin: promote', 'POST', '/models/%ff/promote', '%ff'],
  ['V2 metadata', 'GET', '/v2/models/%ff', '%ff'],
  ['V2 version metadata', 'GET', '/v2/models/m/versions/%E0%A4%A', '%E0%A4%A'],
  ['V2 ready', 'GET', '/v2/models/%ff/ready', '%ff'],
  ['V2 infer', 'POST', '/v2/models/%ff/infer', '%ff'],
  ['V2 versioned infer', 'POST', '/v2/models/m/versions/%zz/infer', '%zz'],
  ['V2 statistics', 'GET', '/v2/models/%ff/stats', '%ff'],
  ['V2 repository', 'POST', '/v2/repository/models/%ff/load', '%ff'],
  ['no such route', 'GET', '/nothing/%ff/here', '%ff'],
]

describe('a malformed percent-escape in the path is 400 invalid_request naming the segment', () => {
  it.each(CASES)('%s: %s %s', async (_family, method, path, segment) => {
    const r = await send(method, path)
    expect(r.status, JSON.stringify(r.body)).toBe(400)
    const message: string = path.startsWith('/v2') ? r.body.error : r.body.error.message
    if (!path.startsWith('/v2')) expect(r.body.error.code).toBe('invalid_request')
    expect(message).toContain(`'${segment}'`)
    expect(message).toMatch(/percent-encoding/)
  })
})

describe('well-formed escapes still decode', () => {
  it('a model name spelled with escapes, in the fast path and the Hono routes', async () => {
    const predict = await send('POST', '/models/a%2Eb%2Dc/predict')
    expect(predict.status, JSON.stringify(predict.body)).toBe(200)
    expect(predict.body.outputs.y).toEqual([[3, 4, 5, 6]])
    expect((await send('POST', '/models/%6D/versions/%31/predict')).status).toBe(200)
    expect((await send('GET', '/models/a%2Eb%2Dc')).body.name).toBe('a.b-c')
    expect((await send('GET', '/v2/models/%6D/ready')).status).toBe(200)
  })

  it('an escaped "%" is a literal percent sign in a name: not found, not a malformed escape', async () => {
    const r = await send('POST', '/models/m%25ff/predict')
    expect(r.status).toBe(404)
    expect(r.body.error.code).toBe('model_not_found')
    expect(r.body.error.message).toContain("'m%ff'")
  })

  it('serves on after every refusal', async () => {
    expect((await send('POST', '/models/m/predict')).status).toBe(200)
  })
})
