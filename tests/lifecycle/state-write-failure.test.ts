import { cp, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  admin,
  getJson,
  historyOf,
  modelDetail,
  predict,
  waitActive,
  waitStatus,
} from '../support/api-client.js'
import { addConstModel } from '../support/models.js'
import { serveOver } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import type { TestServer } from '../support/test-server.js'
import { mountSmallDisk, smallDiskUnavailable, type SmallDisk } from '../support/tmpfs.js'
import { waitFor } from '../support/wait-for.js'
import { modelsDirWithV1, readHistoryFile, smokeFor } from './lifecycle-support.js'

/**
 * Issue: "state writes that fail are acknowledged". The state directory sits on a real small
 * tmpfs, filled up (ENOSPC) or remounted read-only (EROFS). An admin change that cannot be recorded
 * is refused (503 state_write_failed) and undone; an automatic promotion keeps serving, is retried,
 * and /readyz says the state is not being written.
 */

const modelsDir = () => modelsDirWithV1('modelgate-state-write-')

/** adder v1, then v2 shipped and serving (v1 retained), state and history on a small disk. */
async function v2ServingOnSmallDisk(): Promise<{ dir: string; disk: SmallDisk; s: TestServer }> {
  const disk = mountSmallDisk()
  onTestFinished(() => disk.unmount())
  const dir = await modelsDir()
  const s = await serveOver(dir, { stateDir: disk.dir })
  await dropVersion(dir, 'adder', 2, addConstModel(2))
  await waitActive(s.url, 'adder', 2)
  return { dir, disk, s }
}

async function recordedActive(stateDir: string): Promise<number | undefined> {
  const state = JSON.parse(await readFile(join(stateDir, 'state.json'), 'utf8'))
  return state.models.adder?.active?.version
}

describe.skipIf(smallDiskUnavailable !== undefined)(
  `a state directory that cannot be written${smallDiskUnavailable ? ` (skipped: ${smallDiskUnavailable})` : ''}`,
  () => {
    it('full: a rollback is refused with 503 state_write_failed and undone; a restart serves what served before', async () => {
      const { dir, disk, s } = await v2ServingOnSmallDisk()
      await waitFor(async () => (await recordedActive(disk.dir)) === 2, 'state.json to record v2')
      await disk.fill()

      const r = await admin(s.url, '/models/adder/rollback')
      expect(r.status).toBe(503)
      expect(r.body.error.code).toBe('state_write_failed')
      expect(r.body.error.message).toMatch(/not made.*version 2 serves as before/)
      // Undone: v2 serves, v1 is still retained (warm), and nothing says a rollback happened.
      expect(await predict(s.url)).toMatchObject({ status: 200, version: 2, constant: 2 })
      const detail = await modelDetail(s.url, 'adder')
      expect(detail.active).toBe(2)
      expect(detail.retained).toEqual([1])
      expect(detail.versions.find((v: any) => v.version === 2).status).toBe('active')
      expect(detail.versions.find((v: any) => v.version === 1).status).toBe('retained')
      expect((await historyOf(s.url, 'adder')).filter((e) => e.event === 'rolled_back')).toEqual([])
      expect(s.logs.some((l) => l.event === 'admin_change_undone')).toBe(true)

      // A restart on the still full disk serves what was recorded: v2, which is what served.
      await s.close()
      const again = await serveOver(dir, { stateDir: disk.dir })
      expect(await predict(again.url)).toMatchObject({ version: 2, constant: 2 })

      // With room again, the same rollback is made and answered.
      await disk.unfill()
      const ok = await admin(again.url, '/models/adder/rollback', { version: 1 })
      expect(ok.status).toBe(200)
      expect(await predict(again.url)).toMatchObject({ version: 1, constant: 1 })
      expect(await recordedActive(disk.dir)).toBe(1)
    })

    it('full: a promotion that loads a new session is refused and undone; that session is released', async () => {
      const { disk, s } = await v2ServingOnSmallDisk()
      // v3 fails its smoke case: promoting it takes "force", a cold load of a new session.
      await dropVersion(s.modelsDir, 'adder', 3, addConstModel(3), { 'smoke.json': smokeFor(3, 1) })
      await waitStatus(s.url, 'adder', 3, 'rejected')
      await waitFor(async () => {
        const state = JSON.parse(await readFile(join(disk.dir, 'state.json'), 'utf8'))
        return state.models.adder.versions['3']?.verdict === 'rejected'
      }, 'state.json to record the rejection')
      await disk.fill()

      const r = await admin(s.url, '/models/adder/promote', { version: 3, force: true })
      expect(r.status).toBe(503)
      expect(r.body.error.code).toBe('state_write_failed')
      expect(await predict(s.url)).toMatchObject({ version: 2, constant: 2 })
      const detail = await modelDetail(s.url, 'adder')
      expect(detail.active).toBe(2)
      expect(detail.retained).toEqual([1])
      expect(detail.versions.find((v: any) => v.version === 3)).toMatchObject({ loaded: false })
      await waitFor(
        () => s.logs.some((l) => l.event === 'session_released' && l.version === 3),
        'the session of v3 to be released',
      )
    })

    it('read-only: a rollback is refused with 503 state_write_failed and does not take effect', async () => {
      const { disk, s } = await v2ServingOnSmallDisk()
      await waitFor(async () => (await recordedActive(disk.dir)) === 2, 'state.json to record v2')
      disk.readOnly(true)
      const r = await admin(s.url, '/models/adder/rollback')
      expect(r.status).toBe(503)
      expect(r.body.error.code).toBe('state_write_failed')
      expect(await predict(s.url)).toMatchObject({ version: 2, constant: 2 })
      disk.readOnly(false)
      expect((await admin(s.url, '/models/adder/rollback')).status).toBe(200)
      expect(await predict(s.url)).toMatchObject({ version: 1, constant: 1 })
    })

    it('full: an automatic promotion serves, /readyz reports the failing writes, and state.json catches up once there is room', async () => {
      const { dir, disk, s } = await v2ServingOnSmallDisk()
      await waitFor(async () => (await recordedActive(disk.dir)) === 2, 'state.json to record v2')
      await disk.fill()
      await dropVersion(dir, 'adder', 3, addConstModel(3))
      await waitActive(s.url, 'adder', 3)
      expect(await predict(s.url)).toMatchObject({ version: 3, constant: 3 })
      let ready = await getJson(`${s.url}/readyz`)
      expect(ready.status).toBe(200)
      expect(ready.body.stateWriteFailing).toBe(true)
      expect(ready.body.stateWriteError.error).toMatch(/ENOSPC/)
      expect(s.logs.some((l) => l.event === 'state_write_failed' && l.level === 'error')).toBe(true)
      expect(await recordedActive(disk.dir)).toBe(2)

      await disk.unfill()
      await waitFor(
        async () => (await getJson(`${s.url}/readyz`)).body.stateWriteFailing === false,
        'the state to be written again',
      )
      expect(await recordedActive(disk.dir)).toBe(3)
      ready = await getJson(`${s.url}/readyz`)
      expect(ready.body.stateWriteError).toBeUndefined()
      // History lines written since start on a line of their own: every complete line parses.
      await historyOf(s.url, 'adder')
      await readHistoryFile(disk.dir)
    })
  },
)

describe('a state directory that was deleted', () => {
  it('is made again by the next write: deleting and re-creating the models directory loses nothing after it', async () => {
    const dir = await modelsDir()
    const s = await serveOver(dir)
    await dropVersion(dir, 'adder', 2, addConstModel(2))
    await waitActive(s.url, 'adder', 2)
    // Deleted (moved away at once, so the server cannot write into it meanwhile), then made again
    // with the same versions and no state directory.
    const old = `${dir}-deleted`
    await rename(dir, old)
    // The server may make `dir` again at any moment (its lock is refreshed by path): the versions
    // are copied beside it and moved in, whether or not it exists by then.
    const fresh = `${dir}-new`
    await cp(old, fresh, { recursive: true, filter: (src) => !src.includes('.modelgate') })
    await mkdir(dir, { recursive: true })
    for (const name of await readdir(fresh)) await rename(join(fresh, name), join(dir, name))
    await rm(old, { recursive: true, force: true })
    await rm(fresh, { recursive: true, force: true })

    const r = await admin(s.url, '/models/adder/rollback')
    expect(r.status).toBe(200)
    expect(await recordedActive(join(dir, '.modelgate'))).toBe(1)
    await waitFor(
      async () =>
        (await readHistoryFile(join(dir, '.modelgate'))).entries.some(
          (e) => e.event === 'rolled_back',
        ),
      'the rollback in history.jsonl',
    )
  })
})
