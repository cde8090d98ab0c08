import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  eventsOf,
  historyOf,
  modelDetail,
  predict,
  versionView,
  waitForVersion,
} from '../support/api-client.js'
import { addConstModel, writeModelFile, writeVersion } from '../support/models.js'
import { serveOver, tempModelsDir } from '../support/servers.js'
import type { TestServer } from '../support/test-server.js'
import { MODEL } from './arrival-helpers.js'

/**
 * Deleting a version: deleting the active version's file does not stop serving (its
 * session is in memory), the version is marked missing and is not restored after a restart.
 */

/** The first server of a test; its directory outlives it, for the restarts. */
async function first(populate: (modelsDir: string) => Promise<void>): Promise<TestServer> {
  return serveOver(await tempModelsDir(populate))
}

/** Stops `t` (leaving its directory) and starts a new server over the same models and state. */
async function restart(t: TestServer): Promise<TestServer> {
  await t.close()
  return serveOver(t.modelsDir)
}

describe('deleting versions', () => {
  it('a non-active version becomes missing, and comes back when its file does', async () => {
    const t = await first(async (dir) => {
      await writeModelFile(join(dir, MODEL, '1.onnx'), addConstModel(1))
      await writeVersion(dir, MODEL, 2, addConstModel(2))
    })
    expect((await modelDetail(t.url, MODEL)).active).toBe(2)
    await rm(join(t.modelsDir, MODEL, '1.onnx'))
    const v1 = await waitForVersion(t.url, MODEL, 1, (v) => v.status === 'missing', 'to be missing')
    expect(v1).toMatchObject({ onDisk: false, loaded: false })
    expect(eventsOf(await historyOf(t.url, MODEL), 'missing', 1)).toHaveLength(1)
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 2, constant: 2 })

    await writeModelFile(join(t.modelsDir, MODEL, '1.onnx'), addConstModel(1))
    await waitForVersion(
      t.url,
      MODEL,
      1,
      (v) => v.onDisk === true && v.status !== 'missing',
      'to be back on disk',
    )
  })

  it('the active version keeps serving, is not restored after a restart, and a restart with nothing left answers 503', async () => {
    let t = await first(async (dir) => {
      for (const v of [1, 2, 3]) await writeVersion(dir, MODEL, v, addConstModel(v))
    })
    expect((await modelDetail(t.url, MODEL)).active).toBe(3)

    await rm(join(t.modelsDir, MODEL, '3'), { recursive: true })
    const v3 = await waitForVersion(t.url, MODEL, 3, (v) => v.onDisk === false, 'to be off disk')
    // The session is in memory: it still serves.
    expect(v3).toMatchObject({ status: 'active', loaded: true })
    for (let i = 0; i < 5; i++)
      expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 3, constant: 3 })
    expect((await modelDetail(t.url, MODEL)).active).toBe(3)
    expect(eventsOf(await historyOf(t.url, MODEL), 'missing', 3)).toHaveLength(1)

    // Restart: version 3 is gone from disk, so the best remaining version serves instead.
    t = await restart(t)
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 2, constant: 2 })
    let d = await modelDetail(t.url, MODEL)
    expect(d.active).toBe(2)
    expect(versionView(d, 3)?.status ?? 'not listed').not.toBe('active')
    const failed = eventsOf(await historyOf(t.url, MODEL), 'restore_failed', 3)
    expect(failed).toHaveLength(1)
    expect(failed[0].reason).toMatch(/missing/)

    // Delete what serves now, and the one below it: after a restart, nothing is left to serve.
    await rm(join(t.modelsDir, MODEL, '2'), { recursive: true })
    await rm(join(t.modelsDir, MODEL, '1'), { recursive: true })
    await waitForVersion(t.url, MODEL, 1, (v) => v.status === 'missing', 'to be missing')
    await waitForVersion(t.url, MODEL, 2, (v) => v.onDisk === false, 'to be off disk')
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 2, constant: 2 })
    t = await restart(t)
    const gone = await predict(t.url, MODEL)
    expect(gone.status).toBe(503)
    expect(gone.version).toBeNull()
    d = await modelDetail(t.url, MODEL)
    expect(d.active).toBeNull()
  })

  it('a deleted active flat <v>.onnx keeps serving and is not restored after a restart', async () => {
    let t = await first(async (dir) => {
      await writeModelFile(join(dir, MODEL, '1.onnx'), addConstModel(1))
      await writeModelFile(join(dir, MODEL, '2.onnx'), addConstModel(2))
    })
    expect((await modelDetail(t.url, MODEL)).active).toBe(2)
    await rm(join(t.modelsDir, MODEL, '2.onnx'))
    expect(
      await waitForVersion(t.url, MODEL, 2, (v) => v.onDisk === false, 'to be off disk'),
    ).toMatchObject({ status: 'active', loaded: true })
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 2, constant: 2 })
    t = await restart(t)
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 1, constant: 1 })
    expect((await modelDetail(t.url, MODEL)).active).toBe(1)
  })
})
