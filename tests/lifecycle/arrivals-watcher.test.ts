import { mkdir, rename, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  eventsOf,
  getJson,
  historyOf,
  modelDetail,
  predict,
  versionView,
  waitForVersion,
  waitServing,
} from '../support/api-client.js'
import { addConstModel } from '../support/models.js'
import { dropFolder, renameFileInto, stageFolder } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'
import { MODEL, sha256, serveWithV1 } from './arrival-helpers.js'

/**
 * The watcher's edge cases: junk that must be ignored, a rejected file that
 * changes, a model that appears at runtime, polling, and the active version's file replaced in
 * place. Each test has its own server, which starts with adder v1 = x + 1.
 */

describe('hidden, temporary and junk files', () => {
  it('never become versions or models; v1 keeps serving', async () => {
    const t = await serveWithV1({ rescanMs: '3600000' })
    const dir = join(t.modelsDir, MODEL)
    const good = addConstModel(2)
    // Each of these holds a good model: if any were taken for a version, it would win over v1.
    await writeFile(join(dir, '.2.onnx'), good)
    await writeFile(join(dir, '2.onnx.tmp'), good)
    await writeFile(join(dir, '2.onnx.partial'), good)
    await writeFile(join(dir, '~2.onnx'), good)
    await writeFile(join(dir, '2.onnx~'), good)
    await writeFile(join(dir, 'foo.txt'), 'release notes')
    await mkdir(join(dir, 'v2'))
    await writeFile(join(dir, 'v2', 'model.onnx'), good)
    await mkdir(join(dir, '3'))
    await writeFile(join(dir, '3', 'model.onnx.partial'), good)
    // Junk at the top level: a hidden model folder, a temp one, a name that is not a model name.
    for (const name of ['.hidden', 'scratch.tmp', 'bad name!'])
      await writeFile(join(await mkdirp(t.modelsDir, name, '1'), 'model.onnx'), good)

    // The pipeline lists the folder on every event and says what it skipped: wait until one pass
    // has seen all of it.
    const junk = [
      '.2.onnx',
      '2.onnx.tmp',
      '2.onnx.partial',
      '~2.onnx',
      '2.onnx~',
      'foo.txt',
      'v2',
      '3',
    ]
    await waitFor(
      () =>
        junk.every((name) =>
          t.logs.some(
            (r) =>
              r.event === 'path_ignored' && typeof r.path === 'string' && basename(r.path) === name,
          ),
        ),
      'every junk entry to be listed and skipped',
    )
    // A real model dropped after the top-level junk: once it is served, a scan has seen the junk too.
    const staged = await stageFolder(t.modelsDir, { '1/model.onnx': addConstModel(7) })
    await rename(staged, join(t.modelsDir, 'zeta'))
    await waitServing(t.url, 'zeta', 1, 7)

    const models = (await getJson(`${t.url}/models`)).body
    expect(JSON.stringify(models)).not.toMatch(/hidden|scratch|bad name/)
    const d = await modelDetail(t.url, MODEL)
    expect(d.active).toBe(1)
    expect(d.versions.map((v: { version: number }) => v.version)).toEqual([1])
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 1, constant: 1 })
    expect(eventsOf(await historyOf(t.url, MODEL), 'promoted').map((e) => e.version)).toEqual([1])
  })
})

async function mkdirp(...parts: string[]): Promise<string> {
  const dir = join(...parts)
  await mkdir(dir, { recursive: true })
  return dir
}

describe('a file that changes after it was rejected', () => {
  it('is considered again: garbage in a version folder, then a good model written over it', async () => {
    const t = await serveWithV1()
    const garbage = 'not a model, just text'
    await dropFolder(t.modelsDir, MODEL, 2, { 'model.onnx': garbage })
    const rejected = await waitForVersion(
      t.url,
      MODEL,
      2,
      (v) => v.status === 'rejected',
      'to be rejected',
    )
    expect(rejected).toMatchObject({ stage: 'load', reason: 'invalid_model' })
    const good = addConstModel(2)
    await writeFile(join(t.modelsDir, MODEL, '2', 'model.onnx'), good)
    await waitServing(t.url, MODEL, 2, 2)
    const entries = await historyOf(t.url, MODEL)
    expect(eventsOf(entries, 'rejected', 2).map((e) => e.sha256)).toEqual([sha256(garbage)])
    expect(eventsOf(entries, 'promoted', 2).map((e) => e.sha256)).toEqual([sha256(good)])
    expect(versionView(await modelDetail(t.url, MODEL), 2)).toMatchObject({
      status: 'active',
      sha256: sha256(good),
    })
  })

  it('is considered again: a flat <v>.onnx rejected, then a good one renamed over it', async () => {
    const t = await serveWithV1()
    const target = join(t.modelsDir, MODEL, '2.onnx')
    await renameFileInto(t.modelsDir, target, new Uint8Array(0))
    const rejected = await waitForVersion(
      t.url,
      MODEL,
      2,
      (v) => v.status === 'rejected',
      'to be rejected',
    )
    expect(rejected.stage).toBe('load')
    await renameFileInto(t.modelsDir, target, addConstModel(2))
    await waitServing(t.url, MODEL, 2, 2)
    expect(eventsOf(await historyOf(t.url, MODEL), 'promoted', 2)).toHaveLength(1)
  })
})

describe('a model folder that appears at runtime', () => {
  it('is discovered and served when renamed into place whole', async () => {
    const t = await serveWithV1({ rescanMs: '3600000' })
    const staged = await stageFolder(t.modelsDir, {
      '1/model.onnx': addConstModel(7),
      '2/model.onnx': addConstModel(8),
    })
    await rename(staged, join(t.modelsDir, 'zeta'))
    await waitServing(t.url, 'zeta', 2, 8)
    expect((await modelDetail(t.url, 'zeta')).active).toBe(2)
    // The first model is untouched.
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 1, constant: 1 })
    expect(t.logs.some((r) => r.event === 'model_discovered' && r.model === 'zeta')).toBe(true)
  })

  it('is discovered and served when built in place, folder by folder', async () => {
    // chokidar may not watch a folder that just appeared when the file lands in it.
    const t = await serveWithV1({ rescanMs: '3600000' })
    await mkdir(join(t.modelsDir, 'zeta'))
    await mkdir(join(t.modelsDir, 'zeta', '1'))
    await writeFile(join(t.modelsDir, 'zeta', '1', 'model.onnx'), addConstModel(7))
    await waitServing(t.url, 'zeta', 1, 7)
  })
})

describe('--poll', () => {
  it('still picks up a version folder renamed into place', async () => {
    // No periodic rescan to fall back on: the polling watcher has to see it.
    const t = await serveWithV1({ poll: 'true', rescanMs: '3600000' })
    await dropFolder(t.modelsDir, MODEL, 2, { 'model.onnx': addConstModel(2) })
    await waitServing(t.url, MODEL, 2, 2)
    expect(eventsOf(await historyOf(t.url, MODEL), 'promoted', 2)).toHaveLength(1)
  })
})

describe("the active version's file replaced in place", () => {
  it('gates and serves the new bytes under the same version number; broken bytes leave the old ones serving', async () => {
    const t = await serveWithV1()
    const file = join(t.modelsDir, MODEL, '1', 'model.onnx')
    // `cp new.onnx 1/model.onnx`: the same path, new bytes.
    const five = addConstModel(5)
    await writeFile(file, five)
    await waitServing(t.url, MODEL, 1, 5)
    let d = await modelDetail(t.url, MODEL)
    expect(d.active).toBe(1)
    expect(versionView(d, 1)).toMatchObject({ status: 'active', sha256: sha256(five) })
    expect(eventsOf(await historyOf(t.url, MODEL), 'promoted', 1).map((e) => e.sha256)).toEqual([
      sha256(addConstModel(1)),
      sha256(five),
    ])

    // Renamed over it, the atomic way.
    const six = addConstModel(6)
    await renameFileInto(t.modelsDir, file, six)
    await waitServing(t.url, MODEL, 1, 6)

    // Bytes that do not load: rejected, and the bytes that passed keep serving.
    await writeFile(file, 'garbage')
    await waitFor(
      async () => eventsOf(await historyOf(t.url, MODEL), 'rejected', 1).length > 0,
      'the broken replacement to be rejected',
    )
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 1, constant: 6 })
    d = await modelDetail(t.url, MODEL)
    expect(d.active).toBe(1)
    expect(versionView(d, 1)).toMatchObject({ status: 'active', loaded: true, sha256: sha256(six) })
  })
})
