import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { metricValue, postJson } from '../../support/api-client.js'
import { classifierModel, identityModel } from '../../support/models.js'
import { serve, serveOver, tempModelsDir } from '../../support/servers.js'
import { dropVersion, writeFiles } from '../../support/staging.js'
import { waitFor } from '../../support/wait-for.js'

/**
 * The payload log on a real server and real files: what is sampled, what a line holds, feedback
 * joined by id, the folder's size bound, a folder that cannot be written, and the flush on close.
 */

const CLASSIFIER = classifierModel([1, 0, 0])
const LINES = 'modelgate_payload_log_lines_total'

/** A model `m` with `payloadLog` in its model.json, and its version 1. */
function withPayloadLog(payloadLog: Record<string, unknown>, bytes = CLASSIFIER) {
  return async (dir: string) => {
    await writeFiles(join(dir, 'm'), { 'model.json': JSON.stringify({ payloadLog }) })
    await dropVersion(dir, 'm', 1, bytes)
  }
}

/** The default state directory's payload folder of model `m`. */
const folderOf = (modelsDir: string) => join(modelsDir, '.modelgate', 'payloads', 'm')

/** Every line of the model's payload files, oldest file first. */
async function linesOf(modelsDir: string): Promise<any[]> {
  const dir = folderOf(modelsDir)
  const names = (await readdir(dir).catch(() => [])).sort()
  const lines: any[] = []
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8')
    for (const line of text.split('\n')) if (line !== '') lines.push(JSON.parse(line))
  }
  return lines
}

async function waitLines(modelsDir: string, n: number): Promise<any[]> {
  let lines: any[] = []
  await waitFor(async () => {
    lines = await linesOf(modelsDir)
    return lines.length >= n
  }, `${n} payload lines`)
  return lines
}

const predictAs = (url: string, id: string, x: number[][] = [[0, 0, 0]], path = '/models/m') =>
  postJson(`${url}${path}/predict`, { inputs: { x } }, { 'x-prediction-id': id })

/** `n` predictions, `parallel` at a time, each answered 200. */
async function predictMany(url: string, n: number, prefix: string, parallel = 8): Promise<void> {
  for (let i = 0; i < n; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, n - i) }, (_, k) =>
      predictAs(url, `${prefix}-${i + k}`),
    )
    for (const r of await Promise.all(batch)) expect(r.status).toBe(200)
  }
}

describe('the payload log', () => {
  it('writes every sampled prediction with its inputs and outputs, and feedback joinable by id', async () => {
    const t = await serve(withPayloadLog({ fraction: 1 }))
    expect((await predictAs(t.url, 'p-0', [[0, 0, 0]])).status).toBe(200)
    expect(
      (
        await predictAs(t.url, 'p-1', [
          [0, 0, 2],
          [0.5, 0, 0],
        ])
      ).status,
    ).toBe(200)
    // A version named by the client is logged alike; the line says which version answered.
    expect((await predictAs(t.url, 'p-2', [[0, 3, 0]], '/models/m/versions/1')).status).toBe(200)
    const f = await postJson(`${t.url}/models/m/feedback`, {
      items: [
        { id: 'p-1', label: [2, 1] },
        { id: 'p-0', label: 0 },
        { id: 'unknown', label: 0 },
      ],
    })
    expect(f.body.accepted).toBe(2)

    const lines = await waitLines(t.modelsDir, 5)
    expect(lines).toHaveLength(5)
    const predictions = lines.filter((l) => l.type === 'prediction')
    expect(predictions.map((l) => l.id)).toEqual(['p-0', 'p-1', 'p-2'])
    expect(predictions[1]).toEqual({
      type: 'prediction',
      id: 'p-1',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      model: 'm',
      version: 1,
      inputs: {
        x: [
          [0, 0, 2],
          [0.5, 0, 0],
        ],
      },
      outputs: {
        scores: [
          [1, 0, 2],
          [1.5, 0, 0],
        ],
        label: [2, 0],
      },
    })
    expect(predictions[2].outputs.label).toEqual([1])
    const feedback = lines.filter((l) => l.type === 'feedback')
    expect(feedback).toEqual([
      {
        type: 'feedback',
        id: 'p-1',
        time: expect.any(String),
        model: 'm',
        version: 1,
        label: [2, 1],
      },
      { type: 'feedback', id: 'p-0', time: expect.any(String), model: 'm', version: 1, label: 0 },
    ])
    // Joined by id, as a retraining job would.
    const byId = new Map(predictions.map((p) => [p.id, p]))
    expect(feedback.map((l) => byId.get(l.id)?.inputs.x)).toEqual([
      [
        [0, 0, 2],
        [0.5, 0, 0],
      ],
      [[0, 0, 0]],
    ])
    expect(await metricValue(t.url, LINES, { model: 'm', result: 'written' })).toBe(5)
  })

  it('keeps int64 values beyond 2^53 exact, as decimal strings like the simple API, from V2 requests too', async () => {
    const t = await serve(withPayloadLog({ fraction: 1 }, identityModel('int64', ['n'])))
    const big = '9007199254740993' // 2^53 + 1: a JSON number would round it
    const r = await postJson(`${t.url}/models/m/predict`, { inputs: { x: [big, 7] } })
    expect(r.status).toBe(200)
    const [line] = await waitLines(t.modelsDir, 1)
    expect(line.inputs).toEqual({ x: [big, 7] })
    expect(line.outputs).toEqual({ y: [big, 7] })
    expect(line.id).toBe(r.body.id)
    // The KServe V2 API is logged alike, in the same form.
    const v2 = await postJson(`${t.url}/v2/models/m/infer`, {
      id: 'v2-1',
      inputs: [{ name: 'x', datatype: 'INT64', shape: [2], data: [5, 6] }],
    })
    expect(v2.status).toBe(200)
    const [, second] = await waitLines(t.modelsDir, 2)
    expect(second).toMatchObject({ id: 'v2-1', inputs: { x: [5, 6] }, outputs: { y: [5, 6] } })
  })

  it('samples about `fraction` of the requests', async () => {
    const t = await serve(withPayloadLog({ fraction: 0.5 }))
    await predictMany(t.url, 400, 's')
    // Binomial(400, 0.5): mean 200, standard deviation 10. 120..280 is 8 standard deviations
    // either way: a correct sampler falls outside once in ~10^15 runs.
    await t.server.close() // every queued line written
    const lines = await linesOf(t.modelsDir)
    expect(lines.length).toBeGreaterThanOrEqual(120)
    expect(lines.length).toBeLessThanOrEqual(280)
    expect(new Set(lines.map((l) => l.id)).size).toBe(lines.length)
  })

  it('keeps the folder within maxMegabytes: new files as it grows, the oldest removed', async () => {
    const maxBytes = Math.floor(0.01 * 1024 * 1024)
    const t = await serve(withPayloadLog({ fraction: 1, maxMegabytes: 0.01 }))
    const n = 300 // ~190 bytes a line: over 5 times the bound
    await predictMany(t.url, n, 'r', 1)
    await waitFor(
      async () => (await linesOf(t.modelsDir)).at(-1)?.id === `r-${n - 1}`,
      'the newest line',
    )
    const dir = folderOf(t.modelsDir)
    const names = (await readdir(dir)).sort()
    let total = 0
    for (const name of names) total += (await stat(join(dir, name))).size
    expect(total).toBeLessThanOrEqual(maxBytes)
    expect(names.length).toBeGreaterThanOrEqual(2)
    // What is left is the newest lines, in order, without a gap.
    const ids = (await linesOf(t.modelsDir)).map((l) => Number(l.id.slice(2)))
    expect(ids[0]).toBeGreaterThan(0)
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => n - ids.length + i))
    expect(await metricValue(t.url, LINES, { model: 'm', result: 'written' })).toBe(n)
  })

  it('answers every request when the folder cannot be written, logs it once, and recovers', async () => {
    const modelsDir = await tempModelsDir(withPayloadLog({ fraction: 1 }))
    // A file where the payloads folder should be: no folder can be made under it.
    const payloads = join(modelsDir, '.modelgate', 'payloads')
    await mkdir(join(modelsDir, '.modelgate'), { recursive: true })
    await writeFile(payloads, 'not a folder')
    const t = await serveOver(modelsDir)
    await predictMany(t.url, 20, 'w', 4)
    await waitFor(
      async () => (await metricValue(t.url, LINES, { model: 'm', result: 'failed' })) === 20,
      '20 lines failed',
    )
    expect(t.logs.filter((l) => l.event === 'payload_log_write_failed')).toHaveLength(1)

    await rm(payloads)
    expect((await predictAs(t.url, 'after')).status).toBe(200)
    const lines = await waitLines(modelsDir, 1)
    expect(lines.map((l) => l.id)).toEqual(['after'])
    await waitFor(
      () => t.logs.some((l) => l.event === 'payload_log_write_recovered'),
      'payload_log_write_recovered in the log',
    )
  })

  it('writes the queued lines before close settles', async () => {
    const t = await serve(withPayloadLog({ fraction: 1 }))
    await predictMany(t.url, 64, 'c', 64)
    await t.server.close()
    const ids = (await linesOf(t.modelsDir)).map((l) => l.id).sort()
    expect(ids).toEqual(Array.from({ length: 64 }, (_, i) => `c-${i}`).sort())
  })

  it('writes nothing for a model without payloadLog', async () => {
    const t = await serve(async (dir) => dropVersion(dir, 'm', 1, CLASSIFIER))
    await predictMany(t.url, 10, 'n')
    await t.server.close()
    await expect(stat(join(t.modelsDir, '.modelgate', 'payloads'))).rejects.toThrow()
  })
})
