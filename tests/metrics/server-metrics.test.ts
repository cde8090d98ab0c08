import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admin, metricSamples, postJson, waitActive } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { dropVersion } from '../support/staging.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/**
 * Per-version series (requests, request and inference durations) live as long as the version's
 * session: a version that is released takes its series with it, so a server that ships versions
 * all day does not grow a series for every version it ever served.
 */

const PER_VERSION = [
  'modelgate_requests_total',
  'modelgate_request_duration_seconds_count',
  'modelgate_inference_duration_seconds_count',
]

/** The versions that have a series of each per-version metric of `model`. */
async function versionsWithSeries(t: TestServer, model: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = Object.fromEntries(PER_VERSION.map((m) => [m, []]))
  for (const { name, labels } of await metricSamples(t.url)) {
    const versions = out[name]
    if (versions === undefined || labels.model !== model || labels.version === undefined) continue
    if (!versions.includes(labels.version)) versions.push(labels.version)
  }
  for (const versions of Object.values(out)) versions.sort()
  return out
}

const everywhere = (...versions: string[]) =>
  Object.fromEntries(PER_VERSION.map((m) => [m, versions]))

/** A request that succeeds and one the model refuses (wrong shape): series with status 200 and 400. */
async function use(t: TestServer, version: number): Promise<void> {
  const ok = await postJson(`${t.url}/models/adder/predict`, { inputs: [[1, 2, 3, 4]] })
  expect(ok).toMatchObject({ status: 200, body: { version } })
  expect((await postJson(`${t.url}/models/adder/predict`, { inputs: [[1, 2, 3]] })).status).toBe(
    400,
  )
}

describe('per-version metric series', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
      await writeFile(join(dir, 'adder', 'model.json'), JSON.stringify({ retain: 1 }))
    })
  })
  afterAll(() => t?.close())

  it('stay while the version is loaded (active or retained), and go when it is released', async () => {
    await use(t, 1)
    expect(await versionsWithSeries(t, 'adder')).toEqual(everywhere('1'))

    await dropVersion(t.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(t.url, 'adder', 2)
    await use(t, 2)
    // Version 1 is retained (retain: 1): still loaded, its series stay.
    expect(await versionsWithSeries(t, 'adder')).toEqual(everywhere('1', '2'))

    await dropVersion(t.modelsDir, 'adder', 3, addConstModel(3))
    await waitActive(t.url, 'adder', 3)
    await use(t, 3)
    // Version 1 left the retained window: released once idle, and its series with it.
    await waitFor(
      async () => !(await versionsWithSeries(t, 'adder')).modelgate_requests_total!.includes('1'),
      "version 1's series to go",
    )
    expect(await versionsWithSeries(t, 'adder')).toEqual(everywhere('2', '3'))

    // A rollback retires the version rolled back from: released, its series gone too.
    expect((await admin(t.url, '/models/adder/rollback')).body).toMatchObject({
      from: 3,
      to: 2,
      warm: true,
    })
    await waitFor(
      async () => !(await versionsWithSeries(t, 'adder')).modelgate_requests_total!.includes('3'),
      "version 3's series to go",
    )
    expect(await versionsWithSeries(t, 'adder')).toEqual(everywhere('2'))
  })
})
