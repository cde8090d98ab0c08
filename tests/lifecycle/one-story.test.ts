import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  admin,
  historyOf,
  modelDetail,
  predict,
  versionView,
  waitActive,
  waitReason,
  waitStatus,
} from '../support/api-client.js'
import { addConstModel } from '../support/models.js'
import { serveOver, tempModelsDir } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import type { TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'
import { smokeFor } from './lifecycle-support.js'

/**
 * The log, the API and the state tell one story: what the log reports about a version, GET
 * /models/{name} shows; what a restart will do, it says before the restart, and the restart does it.
 */

const ROUNDED = (ms: number) => Math.round(ms * 1000) / 1000 === ms

describe('one story between the log, the API and the state', () => {
  /** A server over a models directory of its own, which outlives it (for the restarts). */
  async function serve(
    populate: (models: string) => Promise<void>,
    options: Record<string, string> = {},
  ): Promise<{ t: TestServer; models: string }> {
    const models = await tempModelsDir(populate)
    return { t: await serveOver(models, options), models }
  }

  it('a serving version whose file is replaced by bad bytes: the API says so, and what a restart will serve, and the restart does it', async () => {
    const { t, models } = await serve(async (m) => {
      await dropVersion(m, 'm', 1, addConstModel(1), { 'smoke.json': smokeFor(1) })
    })
    await waitActive(t.url, 'm', 1)
    await dropVersion(models, 'm', 2, addConstModel(2), { 'smoke.json': smokeFor(2) })
    await waitActive(t.url, 'm', 2)
    const fine = await modelDetail(t.url, 'm')
    expect(fine.restart).toEqual({
      active: 2,
      why: 'version 2 is restored: its file holds the bytes that serve',
    })
    expect(fine.warnings).toEqual([])

    // The file of the serving version is overwritten with bytes that do not load.
    await writeFile(join(models, 'm', '2', 'model.onnx'), 'not a model any more')
    await waitFor(
      () => t.logs.some((l) => l.event === 'version_rejected' && l.version === 2),
      'the log to report the rejection',
    )
    const detail = await modelDetail(t.url, 'm')
    const v2 = versionView(detail, 2)
    // Still serving from memory...
    expect(v2).toMatchObject({ status: 'active', loaded: true, onDisk: true })
    expect((await predict(t.url, 'm')).version).toBe(2)
    // ... and the API says what the log said about the file, and what a restart will do.
    expect(v2.file).toMatchObject({ verdict: 'rejected', stage: 'load', reason: 'invalid_model' })
    expect(v2.file.sha256).not.toBe(v2.sha256)
    expect(detail.warnings).toEqual([
      expect.stringMatching(
        /^version 2's file was replaced by other bytes, rejected \(invalid_model\)/,
      ),
    ])
    expect(detail.restart).toMatchObject({ active: 1 })
    expect(detail.restart.why).toMatch(/version 1, the newest with a passing verdict, would serve/)

    await t.close()
    const again = await serveOver(models)
    await waitActive(again.url, 'm', 1)
    expect((await modelDetail(again.url, 'm')).restart).toMatchObject({ active: 1 })
  })

  it('a version folder that escapes the models directory is listed with its reason, not only logged', async () => {
    const { t } = await serve(async (m) => {
      await dropVersion(m, 'm', 1, addConstModel(1))
      const outside = join(m, '..', 'outside')
      await mkdir(outside)
      await writeFile(join(outside, 'model.onnx'), addConstModel(9))
      await symlink(outside, join(m, 'm', '2'))
    })
    await waitActive(t.url, 'm', 1)
    const detail = await modelDetail(t.url, 'm')
    expect(detail.refused).toEqual([
      { path: 'm/2', reason: 'resolves outside the models directory' },
    ])
    expect(detail.warnings).toContain('m/2 resolves outside the models directory: refused')
    expect(JSON.stringify(detail)).not.toContain(t.modelsDir)
  })

  it('tells a version evicted from the retained window from one unloaded on request', async () => {
    const { t, models } = await serve(async (m) => {
      await mkdir(join(m, 'm'))
      await writeFile(join(m, 'm', 'model.json'), JSON.stringify({ retain: 0 }))
      await dropVersion(m, 'm', 1, addConstModel(1))
    })
    await waitActive(t.url, 'm', 1)
    await dropVersion(models, 'm', 2, addConstModel(2))
    await waitActive(t.url, 'm', 2)
    await waitStatus(t.url, 'm', 1, 'unloaded')
    expect(versionView(await modelDetail(t.url, 'm'), 1)).toMatchObject({
      status: 'unloaded',
      reason: 'evicted',
    })

    expect((await admin(t.url, '/v2/repository/models/m/unload')).status).toBe(200)
    const unloaded = await modelDetail(t.url, 'm')
    expect(versionView(unloaded, 2)).toMatchObject({
      status: 'unloaded',
      reason: 'unloaded_on_request',
    })
    expect(versionView(unloaded, 1)).toMatchObject({
      status: 'unloaded',
      reason: 'unloaded_on_request',
    })

    expect((await admin(t.url, '/v2/repository/models/m/load')).status).toBe(200)
    await waitActive(t.url, 'm', 2)
    expect(versionView(await modelDetail(t.url, 'm'), 1)).toMatchObject({
      status: 'unloaded',
      reason: 'evicted',
    })
  })

  it('an invalid smoke.json keeps the version waiting, one state in the API, logged once however often the folder is listed', async () => {
    const { t, models } = await serve(
      async (m) => {
        await dropVersion(m, 'm', 1, addConstModel(1))
      },
      { rescanMs: '100' },
    )
    await waitActive(t.url, 'm', 1)
    await writeFile(join(models, 'm', 'notes.txt'), 'not a version: skipped on every pass')
    await writeFile(join(models, 'm', 'smoke.json'), '{"cases": [')
    await dropVersion(models, 'm', 2, addConstModel(2))
    await waitReason(t.url, 'm', 2, 'invalid_smoke_file')
    const v2 = versionView(await modelDetail(t.url, 'm'), 2)
    expect(v2).toMatchObject({ status: 'discovered', reason: 'invalid_smoke_file' })
    expect(v2.note).toMatch(/^waiting for a valid smoke\.json: m\/smoke\.json/)
    // Every pass over the folder logs (at debug) the file it skips: count passes by those lines.
    const passes = () =>
      t.logs.filter((l) => l.event === 'path_ignored' && String(l.path).endsWith('notes.txt'))
        .length
    const after = passes()
    await waitFor(() => passes() >= after + 5, 'five more passes over the folder')
    expect(t.logs.filter((l) => l.event === 'smoke_file_invalid')).toHaveLength(1)
    expect((await historyOf(t.url, 'm')).filter((e) => e.event === 'rejected')).toEqual([])
  })

  it('durations in answers and history are rounded to the microsecond', async () => {
    const { t, models } = await serve(async (m) => {
      await dropVersion(m, 'm', 1, addConstModel(1), { 'smoke.json': smokeFor(1) })
    })
    await waitActive(t.url, 'm', 1)
    await dropVersion(models, 'm', 2, addConstModel(2), { 'smoke.json': smokeFor(2) })
    await waitActive(t.url, 'm', 2)
    const detail = await modelDetail(t.url, 'm')
    const gate = versionView(detail, 2).gate
    expect(ROUNDED(gate.ms)).toBe(true)
    for (const s of gate.stages) expect(ROUNDED(s.ms), s.stage).toBe(true)
    const cases = gate.stages.find((s: { stage: string }) => s.stage === 'smoke').details.cases
    for (const c of cases) expect(ROUNDED(c.ms)).toBe(true)
    const rollback = await admin(t.url, '/models/m/rollback')
    expect(rollback.status).toBe(200)
    expect(ROUNDED(rollback.body.ms)).toBe(true)
    for (const e of await historyOf(t.url, 'm')) {
      if (e.ms !== undefined) expect(ROUNDED(e.ms), e.event).toBe(true)
      for (const s of e.stages ?? []) expect(ROUNDED(s.ms), `${e.event} ${s.stage}`).toBe(true)
    }
  })
})
