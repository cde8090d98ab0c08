import http from 'node:http'
import { readFileSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { LogRecord } from '../src/log.js'
import { getJson } from './support/api-client.js'
import { begunPredict } from './support/begun-request.js'
import { spawnServerCli } from './support/cli-server.js'
import { addConstModel, writeVersion } from './support/models.js'
import {
  getHead,
  parseResponses,
  postHead,
  rawConnection,
  type RawResponse,
} from './support/raw-http.js'
import { serve, tempModelsDir } from './support/servers.js'
import { dropVersion } from './support/staging.js'
import type { TestServer } from './support/test-server.js'
import { waitFor } from './support/wait-for.js'

/** The CLI over `models`, ready. */
const serveCli = (models: string, args: string[] = []) =>
  spawnServerCli(['--models', models, ...args])

/** A POST on its own keep-alive agent, resolving with the status (or the error's code). */
function post(url: string, body: string, agent?: http.Agent): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode!))
      },
    )
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
    req.end(body)
  })
}

describe('graceful shutdown', () => {
  function modelsDir(bytes: Uint8Array, modelJson?: object): Promise<string> {
    return tempModelsDir(async (models) => {
      await writeVersion(models, 'm', 1, bytes)
      if (modelJson) await writeFile(join(models, 'm', 'model.json'), JSON.stringify(modelJson))
    })
  }

  const BODY = JSON.stringify({ inputs: [[1, 2, 3, 4]] })

  /**
   * A request the server has begun on a raw connection (its listener ran: it answered 100 Continue),
   * whose body is sent by `sendThen`, with the bytes written after it: requests pipelined behind it. They
   * reach the server while the held one is in flight, so while the server drains the connection
   * is busy, never idle, and never closed under them.
   */
  async function heldOnRawConnection(
    url: string,
  ): Promise<{ sendThen(bytes: string): Promise<RawResponse[]> }> {
    const c = rawConnection(
      url,
      postHead('/predict', { 'content-length': Buffer.byteLength(BODY), expect: '100-continue' }),
    )
    await waitFor(
      () => /^HTTP\/1\.1 100 /.test(c.received().toString('latin1')),
      'the server to begin the request (100 Continue)',
    )
    return {
      async sendThen(bytes: string) {
        c.send(BODY + bytes)
        await c.closed
        return parseResponses(c.received())
      },
    }
  }

  /** A POST /predict of BODY, complete. */
  const predictRequest = () =>
    postHead('/predict', { 'content-length': Buffer.byteLength(BODY) }) + BODY

  it('on SIGTERM: in-flight requests finish, new connections are refused, exit 0', async () => {
    const s = await serveCli(await modelsDir(addConstModel(1)))
    const requests = await Promise.all(
      [1, 2, 3].map(() => begunPredict(s.url, BODY, new http.Agent())),
    )
    s.child.kill('SIGTERM')
    await waitFor(
      () => /"event":"draining","inFlight":3/.test(s.output()),
      'the draining line with 3 requests in flight',
    )
    await waitFor(
      async () => (await post(`${s.url}/predict`, BODY)) === 'ECONNREFUSED',
      'new connections to be refused',
    )
    for (const r of requests) r.send()
    expect(await Promise.all(requests.map((r) => r.done))).toEqual([200, 200, 200])
    expect((await s.closed).code).toBe(0)
    expect(s.output(), s.output()).toMatch(/"event":"stopped"/)
  })

  it('answers a request that arrives on a busy kept-alive connection while draining with 503 shutting_down, and closes it', async () => {
    const s = await serveCli(await modelsDir(addConstModel(1)))
    const held = await heldOnRawConnection(s.url)
    s.child.kill('SIGTERM')
    await waitFor(
      () => /"event":"draining","inFlight":1/.test(s.output()),
      'the draining line with the held request in flight',
    )
    const [cont, first, late, ...more] = await held.sendThen(predictRequest() + predictRequest())
    expect(cont!.status).toBe(100)
    // The request in flight when draining began is answered.
    expect(first).toMatchObject({ status: 200, headers: { 'x-model-version': '1' } })
    expect(JSON.parse(first!.body).outputs.y).toEqual([[2, 3, 4, 5]])
    // The one that came after is refused, with its code, and the connection is closed after it.
    expect(late!.status).toBe(503)
    expect(late!.headers.connection).toBe('close')
    expect(JSON.parse(late!.body).error.code).toBe('shutting_down')
    expect(more).toEqual([])
    expect((await s.closed).code).toBe(0)
  })

  it('gives up on requests that outlive --shutdown-timeout, then stops and exits 0', async () => {
    const s = await serveCli(await modelsDir(addConstModel(1)), ['--shutdown-timeout', '0.3'])
    const held = await begunPredict(s.url, BODY, new http.Agent())
    s.child.kill('SIGTERM')
    expect((await s.closed).code).toBe(0)
    expect(s.output()).toMatch(/"event":"shutdown_timeout","unanswered":1/)
    expect(s.output()).toMatch(/"event":"stopped"/)
    held.send()
    expect(typeof (await held.done)).toBe('string') // the connection was closed under it
  })

  it('turns readiness false while draining: probes on kept-alive connections answer 503, never ready', async () => {
    const s = await serveCli(await modelsDir(addConstModel(1)))
    // A load balancer keeps its connections open: a probe can only arrive on one of them (new
    // connections are refused). Two busy connections, one probe behind each request in flight.
    const probes = ['/readyz', '/v2/health/ready']
    for (const p of probes)
      expect(await getJson(`${s.url}${p}`), `${p} before SIGTERM`).toMatchObject({
        status: 200,
        body: { ready: true },
      })
    const held = await Promise.all(probes.map(() => heldOnRawConnection(s.url)))
    s.child.kill('SIGTERM')
    await waitFor(
      () => /"event":"draining","inFlight":2/.test(s.output()),
      'the draining line with both requests in flight',
    )
    const answers = await Promise.all(held.map((h, i) => h.sendThen(getHead(probes[i]!))))
    const [[, readyzFirst, readyz], [, v2First, v2]] = answers as [RawResponse[], RawResponse[]]
    expect([readyzFirst!.status, v2First!.status]).toEqual([200, 200])
    expect(readyz!.status, `/readyz while draining: ${readyz!.body}`).toBe(503)
    // V2 says not ready with any non-200 (Triton: 400); modelgate's refusal while draining is 503.
    expect([400, 503], `/v2/health/ready while draining: ${v2!.body}`).toContain(v2!.status)
    for (const probe of [readyz!, v2!]) expect(JSON.parse(probe.body).ready).not.toBe(true)
    expect((await s.closed).code).toBe(0)
  })

  /** A state.json of `models` models, gone from the folder, of `versions` rejected versions each. */
  function formerModels(models: number, versions: number) {
    const version = {
      sha256: 'f'.repeat(64),
      verdict: 'rejected',
      stage: 'load',
      reason: 'invalid_model',
      message: 'not a model',
      at: new Date(0).toISOString(),
    }
    const record = {
      active: null,
      retained: [],
      activations: [],
      versions: Object.fromEntries(
        Array.from({ length: versions }, (_, i) => [String(i + 1), version]),
      ),
    }
    return {
      format: 1,
      models: Object.fromEntries(Array.from({ length: models }, (_, i) => [`former-${i}`, record])),
    }
  }

  /**
   * In-process: close() is called from inside the log call of the first record `at` picks, so
   * shutdown begins before the server has asked for the change it logs to be written. Resolves
   * once close() has, with what it left on disk, read at once.
   */
  async function closeAt(
    t: TestServer,
    at: (r: LogRecord) => boolean,
    change: () => Promise<void>,
  ): Promise<{ state: any; history: any[] }> {
    let closing: Promise<void> | undefined
    const push = t.logs.push.bind(t.logs)
    t.logs.push = (...records) => {
      const n = push(...records)
      if (closing === undefined && records.some(at)) closing = t.server.close()
      return n
    }
    await change()
    await waitFor(() => closing !== undefined, 'the change to be logged')
    await closing
    const stateDir = join(t.modelsDir, '.modelgate')
    const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'))
    const history = readFileSync(join(stateDir, 'history.jsonl'), 'utf8')
    return {
      state,
      history: history
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    }
  }

  it('close() resolves only once state.json records the last swap (in-process)', async () => {
    const t = await serve(async (dir) => {
      await writeVersion(dir, 'm', 1, addConstModel(1))
      // The records of models that were removed from the folder: kept, and written out with every
      // change. Some megabytes of them make each state write far longer than a history line.
      await mkdir(join(dir, '.modelgate'))
      await writeFile(join(dir, '.modelgate', 'state.json'), JSON.stringify(formerModels(3000, 10)))
    })
    const { state, history } = await closeAt(
      t,
      (r) => r.event === 'version_promoted' && r.version === 2,
      () => dropVersion(t.modelsDir, 'm', 2, addConstModel(2)),
    )
    expect(state.models.m).toMatchObject({ active: { version: 2 }, retained: [{ version: 1 }] })
    expect(history.at(-1)).toMatchObject({ event: 'promoted', version: 2 })
  })

  it('close() resolves only once history.jsonl records the last change (in-process)', async () => {
    const versions = 60
    const t = await serve(async (dir) => {
      for (let v = 1; v <= versions; v++) await writeVersion(dir, 'm', v, addConstModel(v))
    })
    // The model's folder leaves at once: each version is marked missing, one history line each,
    // written and fsynced in turn, while the state writes coalesce into one or two. Shutdown
    // begins at the last mark: close() must wait for sixty history lines.
    let marked = 0
    const { history } = await closeAt(
      t,
      (r) => r.event === 'version_missing' && ++marked === versions,
      () => rename(join(t.modelsDir, 'm'), join(dirname(t.modelsDir), 'm-gone')),
    )
    const missing = history.filter((e) => e.event === 'missing').map((e) => e.version)
    expect(missing.sort((a, b) => a - b)).toEqual(Array.from({ length: versions }, (_, i) => i + 1))
  })
})
