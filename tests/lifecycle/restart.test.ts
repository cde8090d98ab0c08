import { readFileSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  admin,
  historyOf,
  modelDetail,
  predict,
  versionView,
  waitActive,
  waitStatus,
} from '../support/api-client.js'
import { addConstModel, heavyConstModel } from '../support/models.js'
import { serveOver, tempModelsDir } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import type { TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'
import { smokeFor, writeConstVersion } from './lifecycle-support.js'

/**
 * Restarts (state.json): the recorded active version comes back, not simply the
 * highest number; rolled-back and rejected marks persist; recorded verdicts are not gated again.
 * Each test stops a server and starts a new one over the same models directory.
 */

const start = (dir: string, options: Record<string, string> = {}): Promise<TestServer> =>
  serveOver(dir, { rescanMs: '100', ...options })

/** Waits until the pipeline has run whole passes since now (each one logs the ignored marker file). */
async function afterPasses(s: TestServer, dir: string, model: string, n = 3): Promise<void> {
  const marker = `marker-${Math.random().toString(36).slice(2)}.txt`
  await writeFile(join(dir, model, marker), 'x')
  await waitFor(
    () =>
      s.logs.filter((r) => r.event === 'path_ignored' && String(r.path).endsWith(marker)).length >=
      n,
    `${n} pipeline passes`,
  )
}

function events(entries: any[], version?: number): string[] {
  return entries.filter((e) => version === undefined || e.version === version).map((e) => e.event)
}

describe('restart', () => {
  it('after a rollback: the rollback target serves, the rolled-back version stays out, the retained ones are loaded again', async () => {
    const dir = await tempModelsDir((d) => writeConstVersion(d, 'adder', 1))
    const first = await start(dir)
    for (const v of [2, 3]) {
      await dropVersion(dir, 'adder', v, addConstModel(v))
      await waitActive(first.url, 'adder', v)
    }
    expect(
      (await admin(first.url, '/models/adder/rollback', { reason: 'v3 is wrong' })).body,
    ).toMatchObject({ from: 3, to: 2, warm: true })
    expect((await modelDetail(first.url, 'adder')).retained).toEqual([1])
    await first.close()

    const second = await start(dir)
    const detail = await modelDetail(second.url, 'adder')
    expect(detail.active).toBe(2)
    expect(detail.retained).toEqual([1])
    expect(versionView(detail, 3)).toMatchObject({
      status: 'rolled_back',
      rolledBack: { reason: 'v3 is wrong' },
    })
    expect(await predict(second.url)).toMatchObject({ status: 200, version: 2, constant: 2 })
    // Retained again: served by version, and a rollback to it is warm.
    const v1 = await fetch(`${second.url}/models/adder/versions/1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs": [[1, 2, 3, 4]]}',
    })
    expect(v1.status).toBe(200)

    await afterPasses(second, dir, 'adder')
    expect((await modelDetail(second.url, 'adder')).active).toBe(2)
    expect(events(await historyOf(second.url, 'adder'), 3)).toEqual(['promoted', 'rolled_back'])

    const back = await admin(second.url, '/models/adder/rollback')
    expect(back.status).toBe(200)
    expect(back.body).toMatchObject({ from: 2, to: 1, warm: true })
  })

  it('after a rejection: the rejected version is not gated again and keeps its reason', async () => {
    const dir = await tempModelsDir((d) => writeConstVersion(d, 'adder', 1, { smoke: true }))
    const first = await start(dir)
    await dropVersion(dir, 'adder', 2, addConstModel(2), { 'smoke.json': smokeFor(2, 0.5) })
    await waitStatus(first.url, 'adder', 2, 'rejected')
    const before = await historyOf(first.url, 'adder')
    expect(events(before)).toEqual(['promoted', 'rejected'])
    const reason = versionView(await modelDetail(first.url, 'adder'), 2).reason
    await first.close()

    const second = await start(dir)
    await afterPasses(second, dir, 'adder')
    const detail = await modelDetail(second.url, 'adder')
    expect(detail.active).toBe(1)
    expect(versionView(detail, 2)).toMatchObject({ status: 'rejected', stage: 'smoke', reason })
    const after = await historyOf(second.url, 'adder')
    // One new entry: version 1 restored. No gate ran, so no new verdict for anything.
    expect(events(after)).toEqual(['promoted', 'rejected', 'restored'])
    expect(after.at(-1)).toMatchObject({ version: 1, trigger: 'startup' })
    expect(second.logs.some((r) => r.event === 'version_rejected')).toBe(false)
    expect(await predict(second.url)).toMatchObject({ version: 1, constant: 1 })
  })

  it('a rejected version whose file changed while the server was down is gated again', async () => {
    const dir = await tempModelsDir((d) => writeConstVersion(d, 'adder', 1, { smoke: true }))
    const first = await start(dir)
    await dropVersion(dir, 'adder', 2, addConstModel(2), { 'smoke.json': smokeFor(2, 0.5) })
    await waitStatus(first.url, 'adder', 2, 'rejected')
    await first.close()
    // Fixed: other bytes (same function) and a smoke file that holds.
    await writeFile(join(dir, 'adder', '2', 'model.onnx'), heavyConstModel(2, 16))
    await writeFile(join(dir, 'adder', '2', 'smoke.json'), smokeFor(2))

    const second = await start(dir)
    await waitActive(second.url, 'adder', 2)
    expect(await predict(second.url)).toMatchObject({ version: 2, constant: 2 })
  })

  it('restores the recorded active version rather than the highest number', async () => {
    const dir = await tempModelsDir(async (d) => {
      await writeConstVersion(d, 'adder', 1)
      await writeConstVersion(d, 'adder', 2)
    })
    const first = await start(dir)
    expect((await modelDetail(first.url, 'adder')).active).toBe(2)
    expect((await admin(first.url, '/models/adder/promote', { version: 1 })).status).toBe(200)
    expect(await predict(first.url)).toMatchObject({ version: 1, constant: 1 })
    await first.close()

    const second = await start(dir)
    expect(await predict(second.url)).toMatchObject({ status: 200, version: 1, constant: 1 })
    await afterPasses(second, dir, 'adder')
    expect(await predict(second.url)).toMatchObject({ version: 1, constant: 1 })
    expect(versionView(await modelDetail(second.url, 'adder'), 2).status).not.toBe('active')
  })

  it('when the recorded active file changed while down into bytes that fail, the best remaining version serves and the reason is recorded', async () => {
    const dir = await tempModelsDir(async (d) => {
      await writeConstVersion(d, 'adder', 1)
      await writeConstVersion(d, 'adder', 2)
    })
    const first = await start(dir)
    // Version 1 serves once, so it has a passing verdict of its own.
    expect((await admin(first.url, '/models/adder/promote', { version: 1 })).status).toBe(200)
    expect((await admin(first.url, '/models/adder/promote', { version: 2 })).status).toBe(200)
    await first.close()
    await writeFile(
      join(dir, 'adder', '2', 'model.onnx'),
      'these are not the bytes that were gated',
    )

    const second = await start(dir)
    expect(await predict(second.url)).toMatchObject({ status: 200, version: 1, constant: 1 })
    const failed = (await historyOf(second.url, 'adder')).find((e) => e.event === 'restore_failed')
    expect(failed).toMatchObject({
      version: 2,
      trigger: 'startup',
      reason: expect.stringMatching(/changed/),
    })
    expect(second.logs.find((r) => r.event === 'restore_failed')).toMatchObject({
      model: 'adder',
      version: 2,
      reason: expect.stringMatching(/changed/),
    })
    expect(versionView(await modelDetail(second.url, 'adder'), 2)).toMatchObject({
      status: 'rejected',
      stage: 'load',
    })
  })

  it('when the recorded active file changed while down into another valid model, the new bytes are gated before they serve', async () => {
    const dir = await tempModelsDir(async (d) => {
      await writeConstVersion(d, 'adder', 1)
      await writeConstVersion(d, 'adder', 2)
    })
    const first = await start(dir)
    const sha = versionView(await modelDetail(first.url, 'adder'), 2).sha256
    await first.close()
    await writeFile(join(dir, 'adder', '2', 'model.onnx'), addConstModel(20))

    const second = await start(dir)
    expect(await predict(second.url)).toMatchObject({ status: 200, version: 2, constant: 20 })
    const entries = await historyOf(second.url, 'adder')
    expect(entries.find((e) => e.event === 'restore_failed')).toMatchObject({
      version: 2,
      sha256: sha,
      reason: expect.stringMatching(/changed/),
    })
    const promoted = entries.filter((e) => e.event === 'promoted' && e.version === 2).at(-1)
    expect(promoted.sha256).not.toBe(sha)
    expect(promoted.stages.map((s: { stage: string }) => s.stage)).toEqual(
      expect.arrayContaining(['load', 'smoke', 'warmup']),
    )
  })

  it('when the recorded active version was deleted while down, the best remaining version serves and the reason is recorded', async () => {
    const dir = await tempModelsDir((d) => writeConstVersion(d, 'adder', 1))
    const first = await start(dir)
    await dropVersion(dir, 'adder', 2, addConstModel(2))
    await waitActive(first.url, 'adder', 2)
    await first.close()
    await rm(join(dir, 'adder', '2'), { recursive: true })

    const second = await start(dir)
    expect(await predict(second.url)).toMatchObject({ status: 200, version: 1, constant: 1 })
    expect(
      (await historyOf(second.url, 'adder')).find((e) => e.event === 'restore_failed'),
    ).toMatchObject({ version: 2, reason: expect.stringMatching(/missing/) })
  })

  it('an answered rollback or promote is already in state.json: a crash right after cannot undo it', async () => {
    const dir = await tempModelsDir(async (d) => {
      await writeConstVersion(d, 'adder', 1)
      await writeConstVersion(d, 'adder', 2)
    })
    const s = await start(dir)
    const recorded = () =>
      JSON.parse(readFileSync(join(dir, '.modelgate', 'state.json'), 'utf8')).models.adder
    const seen: { answered: number; stateJson: number }[] = []
    for (let i = 0; i < 6; i++) {
      const to = i % 2 === 0 ? 1 : 2
      const r =
        i === 3
          ? await admin(s.url, '/models/adder/rollback')
          : await admin(s.url, '/models/adder/promote', { version: to })
      expect(r.status, JSON.stringify(r.body)).toBe(200)
      // Read at once, synchronously: what a restart would find if the process died now.
      seen.push({ answered: r.body.to, stateJson: recorded().active.version })
    }
    expect(seen).toEqual(seen.map(({ answered }) => ({ answered, stateJson: answered })))
  })

  it('moves a corrupt state.json aside, starts, and writes a valid one', async () => {
    const dir = await tempModelsDir((d) => writeConstVersion(d, 'adder', 1))
    const stateDir = join(dir, '.modelgate')
    await mkdir(stateDir)
    await writeFile(
      join(stateDir, 'state.json'),
      '{"format": 1, "models": {"adder": {"active": {"vers',
    )

    const s = await start(dir)
    expect(await predict(s.url)).toMatchObject({ status: 200, version: 1, constant: 1 })
    expect(s.logs.find((r) => r.event === 'state_unreadable')).toBeDefined()
    const names = await readdir(stateDir)
    const aside = names.find((n) => n.startsWith('state.json.unreadable-'))
    expect(aside).toBeDefined()
    expect(await readFile(join(stateDir, aside!), 'utf8')).toContain('"vers')
    await waitFor(async () => {
      try {
        return (
          JSON.parse(await readFile(join(stateDir, 'state.json'), 'utf8')).models.adder.active
            .version === 1
        )
      } catch {
        return false
      }
    }, 'a valid state.json')
  })

  it('a state.json that parses but does not fit the schema is moved aside too', async () => {
    const dir = await tempModelsDir((d) => writeConstVersion(d, 'adder', 1))
    const stateDir = join(dir, '.modelgate')
    await mkdir(stateDir)
    await writeFile(
      join(stateDir, 'state.json'),
      JSON.stringify({ format: 1, models: { adder: { active: { version: 'one', sha256: 'x' } } } }),
    )
    const s = await start(dir)
    expect(await predict(s.url)).toMatchObject({ status: 200, version: 1 })
    expect((await readdir(stateDir)).some((n) => n.startsWith('state.json.unreadable-'))).toBe(true)
  })
})
