import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  admin,
  historyOf,
  modelDetail,
  predict,
  versionView,
  waitActive,
} from '../support/api-client.js'
import { spawnServerCli, type CliServer } from '../support/cli-server.js'
import { isGateProcess, killLeftoverGates } from '../support/gate-processes.js'
import { addConstModel, heavyConstModel } from '../support/models.js'
import { tempModelsDir } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import { waitFor } from '../support/wait-for.js'
import { readHistoryFile, smokeFor, writeConstVersion } from './lifecycle-support.js'

/**
 * kill -9 at any moment leaves a state the next start reads without error (issue: "A crash (kill -9)
 * at any moment"). The real CLI runs in its own process; each crash is a SIGKILL, each restart a
 * new process over the same models directory.
 */

const modelsDir = (populate: (dir: string) => Promise<void>): Promise<string> =>
  tempModelsDir(populate, 'modelgate-crash-')

/** The CLI over `dir`, ready, and with its state written (the start writes it once ready). */
async function startCli(dir: string): Promise<CliServer> {
  const cli = await spawnServerCli(['--models', dir, '--stability-ms', '100', '--rescan-ms', '200'])
  const active = await activeOf(cli.url)
  await waitFor(
    async () => (await recordedActive(join(dir, '.modelgate'))) === active,
    'state.json to record the active version',
  )
  return cli
}

/** SIGKILL; the gate process must notice its parent is gone and exit by itself. */
async function crash(cli: CliServer, knownGates?: number[]): Promise<void> {
  if (knownGates) cli.child.kill('SIGKILL') // at once: no /proc read between the answer and the kill
  const gates = [...(knownGates ?? []), ...(await cli.kill9())]
  onTestFinished(() => killLeftoverGates(gates))
  expect((await cli.exited).signal).toBe('SIGKILL')
  await waitFor(
    () => gates.every((pid) => !isGateProcess(pid)),
    'the gate process of the killed server to exit',
    5_000,
  )
}

/**
 * What a crash left on disk must be readable: state.json (which every test has written before its
 * first crash) is there and parses, and every complete history line parses.
 */
async function expectReadableState(stateDir: string): Promise<any> {
  expect(await readdir(stateDir)).toContain('state.json')
  const text = await readFile(join(stateDir, 'state.json'), 'utf8')
  expect(() => JSON.parse(text), `state.json after the crash:\n${text}`).not.toThrow()
  const state = JSON.parse(text)
  expect(state.format).toBe(1)
  await readHistoryFile(stateDir) // throws if a complete line does not parse
  return state
}

/** The active version state.json records, undefined before the file is written. */
async function recordedActive(stateDir: string): Promise<number | undefined> {
  const text = await readFile(join(stateDir, 'state.json'), 'utf8').catch(() => undefined)
  return text === undefined ? undefined : JSON.parse(text).models.adder?.active?.version
}

async function activeOf(url: string): Promise<number> {
  return (await modelDetail(url, 'adder')).active
}

describe('kill -9', () => {
  it('during a promotion, at several moments: the next start serves a version that passed, and the new one gets promoted', async () => {
    const dir = await modelsDir((d) => writeConstVersion(d, 'adder', 1, { smoke: true }))
    const stateDir = join(dir, '.modelgate')
    let cli = await startCli(dir)
    // Each kill comes the moment the promotion has reached a point the test can see (or at once):
    // the version's folder has just landed; the server lists it; its gate has begun (the version
    // shows validating, or later); the swap is logged; state.json records it.
    const status = async (v: number) =>
      versionView(await modelDetail(cli.url, 'adder'), v)?.status as string | undefined
    const moments: Record<string, (v: number, from: number) => Promise<unknown>> = {
      landed: async () => undefined,
      listed: (v) =>
        waitFor(async () => (await status(v)) !== undefined, `version ${v} to be listed`),
      gating: (v) =>
        waitFor(
          async () => ['validating', 'warming', 'active'].includes((await status(v)) ?? ''),
          `version ${v}'s gate to begin`,
        ),
      swapped: (_v, from) => cli.waitForEvent('version_promoted', from),
      recorded: (v) =>
        waitFor(
          async () => (await recordedActive(stateDir)) === v,
          `state.json to record version ${v}`,
        ),
    }
    let version = 1
    for (const [moment, reached] of Object.entries(moments)) {
      const before = await activeOf(cli.url)
      version++
      const from = cli.output().length
      await dropVersion(dir, 'adder', version, heavyConstModel(version), {
        'smoke.json': smokeFor(version),
      })
      await reached(version, from)
      await crash(cli)
      const state = await expectReadableState(stateDir)
      expect([before, version], moment).toContain(state.models.adder.active.version)

      cli = await startCli(dir)
      const first = await predict(cli.url)
      expect(first.status, moment).toBe(200)
      expect([before, version], moment).toContain(first.version)
      expect(first.constant).toBe(first.version)
      // Whatever the crash interrupted, the new version is gated and promoted after the restart.
      await waitActive(cli.url, 'adder', version)
      expect(await predict(cli.url)).toMatchObject({ status: 200, version, constant: version })
      expect(cli.output()).not.toMatch(/"level":"error"/)
      // The start cleaned up after the crash: no temp file of an interrupted state write is left
      // (the running server's own write in progress, named with its pid, is not a leftover).
      const own = `.tmp-${cli.child.pid}-`
      expect(
        (await readdir(stateDir)).filter((n) => n.includes('.tmp') && !n.includes(own)),
      ).toEqual([])
    }
    await expectReadableState(stateDir)
  }, 60_000)

  it('while rollbacks and promotions are being written: the next start reads state.json and history.jsonl and serves the recorded version', async () => {
    const dir = await modelsDir((d) => writeConstVersion(d, 'adder', 1))
    const stateDir = join(dir, '.modelgate')
    let cli = await startCli(dir)
    for (const v of [2, 3]) {
      await dropVersion(dir, 'adder', v, addConstModel(v))
      await waitActive(cli.url, 'adder', v)
    }
    for (const killAfter of [5, 20, 45]) {
      // Four clients flip the active version as fast as the server answers: warm promotes of the
      // retained versions, rollbacks, and cold promotes of rolled-back ones, all written to disk.
      let done = 0
      let stop = false
      const statuses = new Set<number>()
      const client = async (seed: number) => {
        for (let i = seed; !stop; i++) {
          const r =
            i % 3 === 0
              ? await admin(cli.url, '/models/adder/rollback', {}).catch(() => undefined)
              : await admin(cli.url, '/models/adder/promote', { version: 1 + (i % 3) }).catch(
                  () => undefined,
                )
          if (!r) return // the server is gone
          statuses.add(r.status)
          done++
        }
      }
      const clients = [0, 1, 2, 3].map((s) => client(s * 7))
      await waitFor(() => done >= killAfter, `${killAfter} admin calls`)
      await crash(cli)
      stop = true
      await Promise.all(clients)
      expect(
        [...statuses].every((s) => s === 200 || s === 409),
        `statuses ${[...statuses]}`,
      ).toBe(true)

      const state = await expectReadableState(stateDir)
      const recorded = state.models.adder.active.version as number
      cli = await startCli(dir)
      expect(cli.output()).not.toMatch(/state_unreadable/)
      // The recorded active version is restored (its bytes did not change), not the highest one.
      expect(await activeOf(cli.url)).toBe(recorded)
      expect(await predict(cli.url)).toMatchObject({
        status: 200,
        version: recorded,
        constant: recorded,
      })
      await historyOf(cli.url, 'adder') // answers 200
      // Rolled-back marks came back with the state.
      const detail = await modelDetail(cli.url, 'adder')
      for (const [v, p] of Object.entries(
        state.models.adder.versions as Record<string, { rolledBack?: unknown }>,
      )) {
        if (p.rolledBack && Number(v) !== recorded)
          expect(versionView(detail, Number(v)).status).toBe('rolled_back')
      }
    }
  }, 60_000)

  it('right after an acknowledged rollback: the restart serves the rollback target, not the version rolled back from', async () => {
    const dir = await modelsDir((d) => writeConstVersion(d, 'adder', 1))
    let cli = await startCli(dir)
    let version = 1
    for (let round = 0; round < 3; round++) {
      const target = await activeOf(cli.url)
      version++
      await dropVersion(dir, 'adder', version, addConstModel(version))
      await waitActive(cli.url, 'adder', version)
      const gates = await cli.gatePids()
      const r = await admin(cli.url, '/models/adder/rollback')
      // The 200 said the bad version is out; a crash now must not bring it back.
      await crash(cli, gates)
      expect(r.body).toMatchObject({ from: version, to: target })
      cli = await startCli(dir)
      expect(await predict(cli.url), `round ${round}`).toMatchObject({
        status: 200,
        version: target,
        constant: target,
      })
      expect(versionView(await modelDetail(cli.url, 'adder'), version).status).toBe('rolled_back')
    }
  }, 60_000)

  it('right after an acknowledged promote: the restart serves the promoted version', async () => {
    const dir = await modelsDir(async (d) => {
      await writeConstVersion(d, 'adder', 1)
      await writeConstVersion(d, 'adder', 2)
    })
    let cli = await startCli(dir)
    for (let round = 0; round < 3; round++) {
      const to = (await activeOf(cli.url)) === 2 ? 1 : 2
      const gates = await cli.gatePids()
      const r = await admin(cli.url, '/models/adder/promote', { version: to })
      await crash(cli, gates)
      expect(r.status).toBe(200)
      cli = await startCli(dir)
      expect(await predict(cli.url), `round ${round}`).toMatchObject({
        status: 200,
        version: to,
        constant: to,
      })
    }
  }, 60_000)
})
