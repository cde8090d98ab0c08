import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metricValue, postJson } from '../support/api-client.js'
import { loopCounterModel, writeVersion } from '../support/models.js'
import { postHead, rawConnection } from '../support/raw-http.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/**
 * A client that hangs up while its request waits in the queue: the request is answered 499 and
 * never run (clientGone, asked when its turn comes), on the fast simple-API path and on the Hono
 * V2 route. The real server, one inference worker and no batching, so that a request queues behind
 * one long run of the Loop model (its run time grows with its input M).
 */

/** Loop trips that keep the worker busy for a second or two here: time to queue behind it and hang up. */
const LONG = 1_200_000

interface Api {
  readonly route: string
  /** A model of its own per route, so that each test counts only its own requests and runs. */
  readonly model: string
  readonly path: string
  body(m: number): unknown
  /** The model's output `count` in an answer of this route. */
  count(body: any): number
}

const APIS: readonly Api[] = [
  {
    route: 'POST /models/{m}/predict',
    model: 'simple',
    path: '/models/simple/predict',
    body: (m) => ({ inputs: { M: m } }),
    count: (body) => body.outputs.count,
  },
  {
    route: 'POST /v2/models/{m}/infer',
    model: 'v2',
    path: '/v2/models/v2/infer',
    body: (m) => ({ inputs: [{ name: 'M', datatype: 'INT64', shape: [], data: [m] }] }),
    count: (body) => body.outputs[0].data[0],
  },
]

let t: TestServer
beforeAll(async () => {
  t = await startTestServer(async (dir) => {
    for (const { model } of APIS) {
      await writeVersion(dir, model, 1, loopCounterModel())
      const config = {
        execution: { mode: 'workers', workers: 1, timeoutSeconds: 30 },
        batching: { enabled: false },
      }
      await mkdir(join(dir, model), { recursive: true })
      await writeFile(join(dir, model, 'model.json'), JSON.stringify(config))
    }
  })
})
afterAll(() => t?.close())

/** Prediction requests the server has taken in and not answered: running, or queued for the worker. */
const inFlight = () => metricValue(t.url, 'modelgate_in_flight_requests')

describe('a request whose client has gone away before its turn', () => {
  for (const api of APIS) {
    it(`${api.route}: is answered 499 and never run; the request queued behind it runs`, async () => {
      const runs = () =>
        metricValue(t.url, 'modelgate_inference_duration_seconds_count', {
          model: api.model,
          version: '1',
        })
      const runsBefore = (await runs()) ?? 0
      const predict = (m: number) => postJson(`${t.url}${api.path}`, api.body(m))

      const long = predict(LONG)
      await waitFor(async () => (await inFlight()) === 1, 'the long run to start')
      // A complete request on a connection of the test's own, so the test decides when it closes.
      const body = JSON.stringify(api.body(LONG))
      const gone = rawConnection(
        t.url,
        postHead(api.path, { 'content-length': Buffer.byteLength(body) }) + body,
      )
      await waitFor(
        async () => (await inFlight()) === 2,
        'the second request to queue behind the long run',
      )
      gone.socket.destroy()
      await gone.closed
      const next = predict(5)
      await waitFor(
        async () => (await inFlight()) === 3,
        'a third request to queue behind the one given up',
      )

      const first = await long
      expect(first.status).toBe(200)
      expect(api.count(first.body)).toBe(LONG)
      const third = await next
      expect(third.status).toBe(200)
      expect(api.count(third.body)).toBe(5)
      expect(await gone.response).toBeUndefined()
      expect(
        await metricValue(t.url, 'modelgate_requests_total', {
          model: api.model,
          version: '1',
          status: '499',
        }),
      ).toBe(1)
      // Two runs, the long one and the third: the request given up never reached the worker.
      expect((await runs())! - runsBefore).toBe(2)
    })
  }
})
