import { existsSync } from 'node:fs'
import { mkdir, open, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as pace } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import {
  eventsOf,
  historyOf,
  modelDetail,
  predict,
  versionView,
  waitForVersion,
  waitServing,
} from '../support/api-client.js'
import { addConstModel, addConstModelWithMetadata } from '../support/models.js'
import { dropFolder, renameFileInto, stageFolder } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'
import {
  MODEL,
  observe,
  sha256,
  slowCopy,
  serveWithV1,
  type Observation,
} from './arrival-helpers.js'

/**
 * Every way a version arrives while the server runs (issue 3 "Watching"): a folder
 * renamed in, a single file renamed in or copied slowly, a checksum sidecar, bursts. Each test has
 * its own server over its own temp directory, which starts with adder v1 = x + 1.
 */

/** Everything seen during an arrival was a complete version: v1 (x + 1) or `version` (x + constant) once complete. */
function expectOnlyCompleteAnswers(
  seen: readonly Observation[],
  version: number,
  constant: number,
  completeAt: number,
): void {
  expect(seen.length).toBeGreaterThan(0)
  for (const o of seen) {
    expect(o.answer.status).toBe(200)
    const ok =
      (o.answer.version === 1 && o.answer.constant === 1) ||
      (o.answer.version === version && o.answer.constant === constant)
    expect(ok, `answer ${JSON.stringify(o.answer)}`).toBe(true)
  }
  const early = seen.filter((o) => o.answer.version === version && o.at < completeAt)
  expect(early, 'requests answered by the version before its copy had finished').toEqual([])
  const rejected = seen.filter((o) => o.view?.status === 'rejected')
  expect(
    rejected.map((o) => o.view),
    `version ${version} shown as rejected while it was arriving`,
  ).toEqual([])
}

describe('a version folder renamed into place', () => {
  it('is promoted at once, long before the stability window', async () => {
    // A window of ten minutes: a version that waited for it would not serve within this test.
    const t = await serveWithV1({ stabilityMs: '600000', rescanMs: '3600000' })
    const staged = await stageFolder(t.modelsDir, { 'model.onnx': addConstModel(2) })
    await rename(staged, join(t.modelsDir, MODEL, '2'))
    // A folder that appears by rename is complete the moment it appears.
    await waitServing(t.url, MODEL, 2, 2)
    const promoted = eventsOf(await historyOf(t.url, MODEL), 'promoted', 2)
    expect(promoted).toHaveLength(1)
    expect(promoted[0]).toMatchObject({
      from: 1,
      trigger: 'watch',
      sha256: sha256(addConstModel(2)),
    })
  })
})

describe('a single file', () => {
  it('renamed into place as <v>.onnx is promoted once its stability window has passed', async () => {
    const t = await serveWithV1({ stabilityMs: '500' })
    const target = join(t.modelsDir, MODEL, '2.onnx')
    await renameFileInto(t.modelsDir, target, addConstModel(2))
    const { mtimeMs } = await stat(target)
    await waitServing(t.url, MODEL, 2, 2)
    const promoted = eventsOf(await historyOf(t.url, MODEL), 'promoted', 2)
    expect(promoted).toHaveLength(1)
    // Not read before it had been unchanged for the window (history times are whole milliseconds).
    expect(Date.parse(promoted[0].time) - Math.floor(mtimeMs)).toBeGreaterThanOrEqual(500)
    expect(versionView(await modelDetail(t.url, MODEL), 2)).toMatchObject({
      status: 'active',
      source: '2.onnx',
      sha256: sha256(addConstModel(2)),
    })
  })

  it('copied slowly in place as <v>.onnx is never loaded while partial, then promoted', async () => {
    const t = await serveWithV1({ stabilityMs: '400' })
    const bytes = addConstModel(2)
    const watching = observe(t.url, 2)
    const startedAt = Date.now()
    const completeAt = await slowCopy(join(t.modelsDir, MODEL, '2.onnx'), bytes, {
      chunks: 8,
      pauseMs: 70,
    })
    // The copy takes longer than the window; each pause is shorter than it.
    expect(completeAt - startedAt).toBeGreaterThan(400)
    await waitServing(t.url, MODEL, 2, 2)
    expectOnlyCompleteAnswers(await watching.stop(), 2, 2, completeAt)
    const entries = await historyOf(t.url, MODEL)
    expect(eventsOf(entries, 'rejected', 2)).toEqual([])
    expect(eventsOf(entries, 'promoted', 2).map((e) => e.sha256)).toEqual([sha256(bytes)])
    expect(t.logs.filter((r) => r.event === 'version_rejected' && r.version === 2)).toEqual([])
  })

  it('copied slowly into a version folder that already exists is not rejected for its partial bytes', async () => {
    const t = await serveWithV1({ stabilityMs: '400' })
    const bytes = addConstModel(2)
    await mkdir(join(t.modelsDir, MODEL, '2'))
    const watching = observe(t.url, 2)
    const completeAt = await slowCopy(join(t.modelsDir, MODEL, '2', 'model.onnx'), bytes, {
      chunks: 8,
      pauseMs: 70,
    })
    await waitServing(t.url, MODEL, 2, 2)
    expectOnlyCompleteAnswers(await watching.stop(), 2, 2, completeAt)
    const entries = await historyOf(t.url, MODEL)
    expect(eventsOf(entries, 'rejected', 2)).toEqual([])
    expect(eventsOf(entries, 'promoted', 2).map((e) => e.sha256)).toEqual([sha256(bytes)])
    expect(versionView(await modelDetail(t.url, MODEL), 2)).toMatchObject({
      status: 'active',
      source: '2/model.onnx',
      sha256: sha256(bytes),
    })
  })

  it('copied slowly into a folder made just before (mkdir && cp) is not served while partial, even where its prefix loads', async () => {
    // `mkdir 2 && cp big.onnx 2/model.onnx`: the watcher first sees the folder with a partial file
    // in it. The copy keeps writing, so the file is newer than its folder's ctime: not a folder
    // renamed in whole, and it waits for the stability window. The bytes pass through a point
    // where they already form a loadable model (everything but the trailing metadata_props).
    // (A copy that stops dead at exactly such a point, within one clock tick of creating the file,
    // looks like a rename: README, "Shipping a new version", says so.)
    const t = await serveWithV1({ stabilityMs: '2000' })
    const full = addConstModelWithMetadata(2, { note: 'n'.repeat(4000) })
    const prefix = addConstModel(2)
    expect(Buffer.from(full.subarray(0, prefix.length)).equals(Buffer.from(prefix))).toBe(true)
    await mkdir(join(t.modelsDir, MODEL, '2'))
    const watching = observe(t.url, 2)
    const file = await open(join(t.modelsDir, MODEL, '2', 'model.onnx'), 'w')
    const chunks = 6
    const step = Math.ceil(prefix.length / chunks)
    for (let at = 0; at < prefix.length; at += step) {
      await file.write(prefix, at, Math.min(step, prefix.length - at), at)
      await pace(60)
    }
    await pace(300) // a stall where the bytes so far load: well inside the 2 s window
    await file.write(full, prefix.length, full.length - prefix.length, prefix.length)
    await file.close()
    const completeAt = Date.now()
    await waitServing(t.url, MODEL, 2, 2)
    await waitForVersion(
      t.url,
      MODEL,
      2,
      (v) => v.status === 'active' && v.sha256 === sha256(full),
      'to serve the complete file',
    )
    const seen = await watching.stop()
    const entries = await historyOf(t.url, MODEL)
    expect(
      eventsOf(entries, 'promoted', 2).map((e) => e.sha256),
      `bytes promoted for version 2 (the prefix is ${sha256(prefix)})`,
    ).toEqual([sha256(full)])
    expectOnlyCompleteAnswers(seen, 2, 2, completeAt)
  })
})

describe('a checksum sidecar', () => {
  it('lets matching bytes in without waiting for the stability window', async () => {
    // A window of ten minutes: a version that waited for it would not serve within this test.
    const t = await serveWithV1({ stabilityMs: '600000', rescanMs: '3600000' })
    // A flat file, which otherwise waits for the window: the sidecar alone vouches for it.
    const two = addConstModel(2)
    await writeFile(join(t.modelsDir, MODEL, '2.onnx.sha256'), `${sha256(two)}  2.onnx\n`)
    await writeFile(join(t.modelsDir, MODEL, '2.onnx'), two)
    await waitServing(t.url, MODEL, 2, 2)

    // A version folder made in place (not renamed), sidecar first, as `sha256sum` writes it.
    const three = addConstModel(3)
    await mkdir(join(t.modelsDir, MODEL, '3'))
    await writeFile(
      join(t.modelsDir, MODEL, '3', 'model.onnx.sha256'),
      `${sha256(three)}  model.onnx\n`,
    )
    await writeFile(join(t.modelsDir, MODEL, '3', 'model.onnx'), three)
    await waitServing(t.url, MODEL, 3, 3)
    expect(eventsOf(await historyOf(t.url, MODEL), 'rejected')).toEqual([])
  })

  it('that does not match rejects the version with checksum_mismatch, and keeps serving v1', async () => {
    const t = await serveWithV1({ stabilityMs: '300' })
    const bytes = addConstModel(2)
    await dropFolder(t.modelsDir, MODEL, 2, {
      'model.onnx': bytes,
      'model.onnx.sha256': `${sha256(addConstModel(9))}  model.onnx\n`,
    })
    const v2 = await waitForVersion(
      t.url,
      MODEL,
      2,
      (v) => v.status === 'rejected',
      'to be rejected',
    )
    expect(v2).toMatchObject({
      status: 'rejected',
      reason: 'checksum_mismatch',
      onDisk: true,
      loaded: false,
    })
    expect(v2.message).toContain(sha256(bytes))
    const rejected = eventsOf(await historyOf(t.url, MODEL), 'rejected', 2)
    expect(rejected).toHaveLength(1)
    expect(rejected[0]).toMatchObject({ reason: 'checksum_mismatch', sha256: sha256(bytes) })
    expect(eventsOf(await historyOf(t.url, MODEL), 'promoted', 2)).toEqual([])
    expect(await predict(t.url, MODEL)).toEqual({ status: 200, version: 1, constant: 1 })
  })

  it('corrected after a checksum_mismatch brings the version back', async () => {
    // The sidecar is part of the version: fixing it is "a file that changes after it was rejected".
    const t = await serveWithV1({ stabilityMs: '300' })
    const bytes = addConstModel(2)
    await dropFolder(t.modelsDir, MODEL, 2, {
      'model.onnx': bytes,
      'model.onnx.sha256': `${sha256(addConstModel(9))}  model.onnx\n`,
    })
    await waitForVersion(
      t.url,
      MODEL,
      2,
      (v) => v.reason === 'checksum_mismatch',
      'to be rejected for its checksum',
    )
    await writeFile(
      join(t.modelsDir, MODEL, '2', 'model.onnx.sha256'),
      `${sha256(bytes)}  model.onnx\n`,
    )
    await waitServing(t.url, MODEL, 2, 2)
  })
})

describe('a burst of versions', () => {
  it('ends in one swap to the newest that passes; the older ones are never promoted', async () => {
    const t = await serveWithV1({ rescanMs: '3600000' })
    const staged = await Promise.all(
      [2, 3, 4].map((c) => stageFolder(t.modelsDir, { 'model.onnx': addConstModel(c) })),
    )
    const watching = observe(t.url, 4)
    for (const [i, dir] of staged.entries())
      await rename(dir, join(t.modelsDir, MODEL, String(i + 2)))
    await waitServing(t.url, MODEL, 4, 4)
    const seen = await watching.stop()
    expect(seen.filter((o) => o.answer.version === 2 || o.answer.version === 3)).toEqual([])
    let entries = await historyOf(t.url, MODEL)
    expect(eventsOf(entries, 'promoted', 2)).toEqual([])
    expect(eventsOf(entries, 'promoted', 3)).toEqual([])
    expect(eventsOf(entries, 'promoted', 4)).toHaveLength(1)
    let d = await modelDetail(t.url, MODEL)
    expect(d.active).toBe(4)
    // Older than the active version: recorded, not auto-promoted (roll-forward only).
    expect(versionView(d, 2)).toMatchObject({ status: 'discovered', loaded: false })
    expect(versionView(d, 3)).toMatchObject({ status: 'discovered', loaded: false })

    // The newest is broken: the next newest that passes wins.
    await dropFolder(t.modelsDir, MODEL, 5, { 'model.onnx': addConstModel(5) })
    await dropFolder(t.modelsDir, MODEL, 6, { 'model.onnx': 'garbage, not a model' })
    await waitServing(t.url, MODEL, 5, 5)
    const v6 = await waitForVersion(
      t.url,
      MODEL,
      6,
      (v) => v.status === 'rejected',
      'to be rejected',
    )
    expect(v6).toMatchObject({ stage: 'load', reason: 'invalid_model' })
    entries = await historyOf(t.url, MODEL)
    expect(eventsOf(entries, 'promoted', 5)).toHaveLength(1)
    expect(eventsOf(entries, 'promoted', 6)).toEqual([])
    d = await modelDetail(t.url, MODEL)
    expect(d.active).toBe(5)
    expect(d.retained).toContain(4)
  })
  it('abandons a candidate whose newer versions land while it is being read, before its gate', async () => {
    // The moment the pipeline lists the folder with version 2 in it (it logs the junk file it
    // skips while listing), versions 3 and 4 are renamed in: they land while version 2 is being
    // read, before its gate starts. Version 2 must not serve: newer versions were on disk first.
    const t = await serveWithV1({ rescanMs: '3600000' })
    const dir = join(t.modelsDir, MODEL)
    await writeFile(join(dir, 'NOTES.txt'), 'not a version')
    const listedNotes = () =>
      t.logs.some((r) => r.event === 'path_ignored' && String(r.path).endsWith('NOTES.txt'))
    await waitFor(listedNotes, 'the notes file to be listed')
    const staged = await Promise.all(
      [2, 3, 4].map((c) => stageFolder(t.modelsDir, { 'model.onnx': addConstModel(c) })),
    )
    const watching = observe(t.url, 2)
    let landed: Promise<void> | undefined
    const push = t.logs.push.bind(t.logs)
    t.logs.push = (...records) => {
      const listing = records.some(
        (r) => r.event === 'path_ignored' && String(r.path).endsWith('NOTES.txt'),
      )
      if (landed === undefined && listing && existsSync(join(dir, '2'))) {
        landed = (async () => {
          await rename(staged[1]!, join(dir, '3'))
          await rename(staged[2]!, join(dir, '4'))
        })()
      }
      return push(...records)
    }
    await rename(staged[0]!, join(dir, '2'))
    await waitFor(() => landed !== undefined, 'the folder to be listed with version 2', 5000)
    await landed
    await waitServing(t.url, MODEL, 4, 4)
    const seen = await watching.stop()
    const entries = await historyOf(t.url, MODEL)
    expect(
      eventsOf(entries, 'promoted').map((e) => e.version),
      'versions promoted',
    ).toEqual([1, 4])
    expect(
      seen.filter((o) => o.answer.version === 2 || o.answer.version === 3).length,
      'requests answered by 2 or 3',
    ).toBe(0)
  })
})
