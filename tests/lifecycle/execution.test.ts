import { cp, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  admin,
  metricValue,
  modelDetail,
  postJson,
  predict,
  versionView,
  waitActive,
} from '../support/api-client.js'
import {
  addConstModel,
  heavyConstModel,
  loopCounterModel,
  writeVersion,
} from '../support/models.js'
import { serve } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import type { TestServer } from '../support/test-server.js'
import { liveThreads, threadIds, threadsSince } from '../support/threads.js'
import { waitFor } from '../support/wait-for.js'
import { writeConstVersion } from './lifecycle-support.js'

/**
 * Where a version's sessions run (model.json `execution`), against the real server: the
 * choice GET /models/{name} shows, a run past its timeout ended while the server keeps answering,
 * a version refused for memory, and workers that live exactly as long as their version is loaded.
 * Every server here says `--execution auto` itself: these tests are about the choice.
 */

const serveAuto = (
  populate: (dir: string) => Promise<void> | void,
  options: Record<string, string> = {},
): Promise<TestServer> => serve(populate, { execution: 'auto', ...options })

async function writeModelJson(modelsDir: string, model: string, config: unknown): Promise<void> {
  await mkdir(join(modelsDir, model), { recursive: true })
  await writeFile(join(modelsDir, model, 'model.json'), JSON.stringify(config))
}

describe('execution per model', () => {
  it("model.json's execution.mode workers serves in workers; auto keeps the tiny example model on main", async () => {
    const t = await serveAuto(async (dir) => {
      await writeConstVersion(dir, 'adder', 1)
      await writeModelJson(dir, 'adder', { execution: { mode: 'workers', workers: 3 } })
      await cp(join(import.meta.dirname, '..', '..', 'models', 'iris'), join(dir, 'iris'), {
        recursive: true,
      })
    })
    const adder = await modelDetail(t.url, 'adder')
    expect(adder.execution).toEqual({
      mode: 'workers',
      workers: 3,
      reason: expect.stringMatching(/model\.json/),
    })
    const answers = await Promise.all(Array.from({ length: 12 }, () => predict(t.url, 'adder')))
    for (const a of answers) expect(a).toMatchObject({ status: 200, version: 1, constant: 1 })

    const iris = await modelDetail(t.url, 'iris')
    expect(iris.execution).toEqual({
      mode: 'main',
      workers: 0,
      reason: expect.stringMatching(/^auto: small/),
    })
    const r = await postJson(`${t.url}/models/iris/predict`, {
      inputs: { features: [[6.3, 3.3, 4.7, 1.6]] },
    })
    expect(r.status).toBe(200)
    expect(r.body.outputs.label).toEqual([1])
  })

  it('a Loop whose trip count is the input runs in workers under auto; a run past timeoutSeconds is 504 while the server answers on', async () => {
    const t = await serveAuto(async (dir) => {
      await writeVersion(dir, 'looper', 1, loopCounterModel())
      await writeModelJson(dir, 'looper', { execution: { timeoutSeconds: 1 } })
      await writeConstVersion(dir, 'adder', 1)
    })
    const looper = await modelDetail(t.url, 'looper')
    expect(looper.execution).toMatchObject({
      mode: 'workers',
      reason: expect.stringMatching(/Loop/),
    })
    expect(looper.execution.workers).toBeGreaterThanOrEqual(2)
    const count = (m: number) => postJson(`${t.url}/models/looper/predict`, { inputs: { M: m } })
    expect(await count(5)).toMatchObject({ status: 200, body: { outputs: { count: 5 } } })

    // ~4e6 iterations take seconds on any machine this runs on (about 7 s here): several times the
    // timeout, yet the run ends within the test, so its stuck worker is seen to return.
    const started = performance.now()
    let done = false
    const huge = count(4_000_000).finally(() => (done = true))
    const meanwhile = { healthz: [] as number[], other: [] as number[] }
    while (!done) {
      meanwhile.healthz.push((await fetch(`${t.url}/healthz`)).status)
      if (done) break
      meanwhile.other.push((await predict(t.url, 'adder')).status)
    }
    const timedOut = await huge
    const seconds = (performance.now() - started) / 1000
    expect(timedOut.status).toBe(504)
    expect(timedOut.body.error.code).toBe('inference_timeout')
    expect(seconds).toBeGreaterThanOrEqual(1)
    expect(seconds).toBeLessThan(4)
    // While the run went on, the event loop was free: /healthz and another model kept answering.
    expect(meanwhile.healthz.length).toBeGreaterThanOrEqual(3)
    expect(meanwhile.other.length).toBeGreaterThanOrEqual(3)
    expect(new Set([...meanwhile.healthz, ...meanwhile.other])).toEqual(new Set([200]))

    expect(
      await metricValue(t.url, 'modelgate_inference_workers_lost_total', {
        model: 'looper',
        reason: 'timeout',
      }),
    ).toBe(1)
    const stuck = () =>
      metricValue(t.url, 'modelgate_inference_workers_stuck', { model: 'looper', version: '1' })
    // The other worker serves while the ended one is still inside its run.
    expect(await count(7)).toMatchObject({ status: 200, body: { outputs: { count: 7 } } })
    // onnxruntime cannot interrupt a run: the ended worker is stuck until its run returns.
    await waitFor(
      async () => (await stuck()) === 0,
      'the stuck worker to return from its run',
      45_000,
    )
    expect(await count(3)).toMatchObject({ status: 200, body: { outputs: { count: 3 } } })
    expect(versionView(await modelDetail(t.url, 'looper'), 1).status).toBe('active')
  }, 60_000)

  it('--max-memory: a version that would not fit waits (insufficient_memory, logged once) while the active one serves', async () => {
    // 16 workers: the estimate is the file's size × 18, about 576 MiB for this 32 MiB model.
    const big = heavyConstModel(2, 1_000_000)
    const rss = process.memoryUsage.rss()
    const t = await serveAuto(
      async (dir) => {
        await writeConstVersion(dir, 'adder', 1)
        await writeModelJson(dir, 'adder', { execution: { workers: 16 } })
        // Skipped on every pass over the folder (logged at debug): counts the passes.
        await writeFile(join(dir, 'adder', 'notes.txt'), 'not a version')
      },
      { maxMemory: String(rss + 200 * 2 ** 20), rescanMs: '100' },
    )
    await dropVersion(t.modelsDir, 'adder', 2, big)
    await waitFor(
      async () =>
        versionView(await modelDetail(t.url, 'adder'), 2)?.note?.includes('insufficient_memory') ===
        true,
      'version 2 to wait for memory',
    )
    const waiting = versionView(await modelDetail(t.url, 'adder'), 2)
    expect(waiting).toMatchObject({ status: 'discovered', loaded: false })
    expect(waiting.note).toMatch(/--max-memory/)

    const passes = () =>
      t.logs.filter((l) => l.event === 'path_ignored' && String(l.path).endsWith('notes.txt'))
        .length
    const seen = passes()
    await waitFor(() => passes() >= seen + 3, 'three more passes over the model')
    expect(t.logs.filter((l) => l.event === 'insufficient_memory')).toEqual([
      expect.objectContaining({ model: 'adder', version: 2 }),
    ])
    expect(await predict(t.url, 'adder')).toMatchObject({ status: 200, version: 1, constant: 1 })
    const detail = await modelDetail(t.url, 'adder')
    expect(detail.active).toBe(1)
    expect(t.logs.some((l) => l.event === 'version_warming' && l.version === 2)).toBe(false)

    // An admin promote of it passes the gate, then does not fit: 503, and nothing changed.
    const promote = await admin(t.url, '/models/adder/promote', { version: 2 })
    expect(promote).toMatchObject({ status: 503, body: { error: { code: 'insufficient_memory' } } })
    expect((await modelDetail(t.url, 'adder')).active).toBe(1)
    expect(versionView(await modelDetail(t.url, 'adder'), 2).status).not.toBe('validating')
  })

  it('a version left behind the retained window ends its workers; a retained one keeps them, and rollback to it is warm', async () => {
    const t = await serveAuto((dir) => writeConstVersion(dir, 'other', 1))
    await writeModelJson(t.modelsDir, 'adder', {
      retain: 1,
      execution: { mode: 'workers', workers: 2 },
      session: { intraOpNumThreads: 1 },
    })
    /** Ships version v and returns the threads that appeared with it: its workers. */
    const ship = async (v: number): Promise<string[]> => {
      const before = threadIds()
      await dropVersion(t.modelsDir, 'adder', v, addConstModel(v))
      await waitActive(t.url, 'adder', v)
      return threadsSince(before)
    }
    const v1 = await ship(1)
    expect(v1.length).toBeGreaterThanOrEqual(2)
    const v2 = await ship(2)
    expect(liveThreads(v1), 'version 1 is retained: its workers stay').toEqual(v1)
    await ship(3)
    // Version 1 left the window (retain: 1): released once idle, which ends its worker threads.
    await waitFor(() => liveThreads(v1).length <= v1.length - 2, "version 1's workers to end")
    expect(versionView(await modelDetail(t.url, 'adder'), 1).loaded).toBe(false)
    expect(liveThreads(v2), 'version 2 is retained: its workers stay').toEqual(v2)

    const warmingBefore = t.logs.filter((l) => l.event === 'version_warming').length
    const r = await admin(t.url, '/models/adder/rollback')
    expect(r.body).toMatchObject({ from: 3, to: 2, warm: true })
    expect(await predict(t.url, 'adder')).toMatchObject({ status: 200, version: 2, constant: 2 })
    // The same workers answer: nothing was loaded or warmed for the rollback.
    expect(liveThreads(v2)).toEqual(v2)
    expect(t.logs.filter((l) => l.event === 'version_warming').length).toBe(warmingBefore)
    expect((await modelDetail(t.url, 'adder')).execution).toMatchObject({
      mode: 'workers',
      workers: 2,
    })
  })
})
