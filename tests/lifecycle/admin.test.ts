import { rm, utimes, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadServeConfig } from '../../src/config.js'
import {
  admin,
  getJson,
  historyOf,
  modelDetail,
  predict,
  requestJson,
  versionView,
  waitActive,
  waitStatus,
} from '../support/api-client.js'
import { addConstModel, spinModel, writeVersion } from '../support/models.js'
import { serve, tempDir } from '../support/servers.js'
import { dropVersion } from '../support/staging.js'
import type { TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'
import { smokeFor, writeConstVersion } from './lifecycle-support.js'

/**
 * The admin API: rollback warm and cold, promote, history, auth. Each test owns its
 * server and models directory; versions are addConstModel(v), so y = x + v says which version's
 * session answered.
 */

/** v1 served at start, then `later` versions shipped one at a time, each waited for. */
async function servingChain(
  later: number[],
  o: { modelJson?: unknown; smoke?: boolean; options?: Record<string, string> } = {},
): Promise<TestServer> {
  const t = await serve(async (dir) => {
    await writeConstVersion(dir, 'adder', 1, { smoke: o.smoke })
    if (o.modelJson !== undefined)
      await writeFile(join(dir, 'adder', 'model.json'), JSON.stringify(o.modelJson))
  }, o.options)
  for (const v of later) {
    await dropVersion(
      t.modelsDir,
      'adder',
      v,
      addConstModel(v),
      o.smoke ? { 'smoke.json': smokeFor(v) } : {},
    )
    await waitActive(t.url, 'adder', v)
  }
  return t
}

/** Completed pipeline passes that listed `file`: each one logs it as ignored. */
function passesSeeing(t: TestServer, file: string): number {
  return t.logs.filter((r) => r.event === 'path_ignored' && String(r.path).endsWith(file)).length
}

describe('rollback', () => {
  it('to a retained version is warm, and the very next request is served by it', async () => {
    const t = await servingChain([2])
    expect((await predict(t.url)).version).toBe(2)

    const r = await admin(t.url, '/models/adder/rollback')
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ model: 'adder', from: 2, to: 1, warm: true })

    const next = await predict(t.url)
    expect(next).toMatchObject({ status: 200, version: 1, constant: 1 })
    const detail = await modelDetail(t.url, 'adder')
    expect(detail.active).toBe(1)
    expect(versionView(detail, 2)).toMatchObject({
      status: 'rolled_back',
      rolledBack: { reason: expect.any(String) },
    })
  })

  it('is a pointer swap every time: warm rollbacks through fifteen retained versions, while a gate that cannot end holds the pipeline', async () => {
    const t = await servingChain([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], {
      modelJson: { retain: 15 },
    })
    // Version 17's gate runs a loop of a trillion iterations: the model's pipeline (and the gate
    // process) stay busy for the whole test. A rollback that waited for either, or loaded or
    // gated anything, would never answer.
    await dropVersion(t.modelsDir, 'adder', 17, spinModel(17, 1e12))
    await waitStatus(t.url, 'adder', 17, 'validating')
    for (let v = 16; v > 1; v--) {
      // The version about to be rolled back from has just served, as it would in production.
      expect(await predict(t.url)).toMatchObject({ version: v, constant: v })
      const r = await admin(t.url, '/models/adder/rollback')
      expect(r.body).toMatchObject({ from: v, to: v - 1, warm: true })
      // The very next request is served by the target.
      expect(await predict(t.url)).toMatchObject({ version: v - 1, constant: v - 1 })
    }
    expect(versionView(await modelDetail(t.url, 'adder'), 17).status).toBe('validating')
  })

  it('leaves the rolled-back version out of auto-promotion, pass after pass, even when its file is touched', async () => {
    const t = await servingChain([2], { options: { rescanMs: '100' } })
    expect((await admin(t.url, '/models/adder/rollback')).status).toBe(200)

    // Unrelated files and a touched (same bytes, new mtime) model file make passes run over v2.
    await writeFile(join(t.modelsDir, 'adder', 'notes.txt'), 'unrelated')
    const file = join(t.modelsDir, 'adder', '2', 'model.onnx')
    const later = new Date(Date.now() + 5_000)
    await utimes(file, later, later)
    // A touched file waits out the stability window (shown as 'discovered', waiting), then its bytes
    // are found to be the rolled-back ones. Passes are serialized: the n-th one that lists notes.txt
    // starts after the one before it ended.
    await waitFor(() => passesSeeing(t, 'notes.txt') >= 2, 'two pipeline passes after the touch')
    await waitStatus(t.url, 'adder', 2, 'rolled_back')
    const seen = passesSeeing(t, 'notes.txt')
    await waitFor(() => passesSeeing(t, 'notes.txt') >= seen + 2, 'two more pipeline passes')

    const detail = await modelDetail(t.url, 'adder')
    expect(detail.active).toBe(1)
    expect(versionView(detail, 2).status).toBe('rolled_back')
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
    const events = (await historyOf(t.url, 'adder'))
      .filter((e) => e.version === 2)
      .map((e) => e.event)
    expect(events).toEqual(['promoted', 'rolled_back'])
  })

  it('goes back to the version active before the current one by default, one step at a time', async () => {
    const t = await servingChain([2, 3])
    const first = await admin(t.url, '/models/adder/rollback')
    expect(first.body).toMatchObject({ from: 3, to: 2, warm: true })
    expect(await predict(t.url)).toMatchObject({ version: 2, constant: 2 })
    const second = await admin(t.url, '/models/adder/rollback')
    expect(second.status).toBe(200)
    expect(second.body).toMatchObject({ from: 2, to: 1, warm: true })
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
    // 3 and 2 were rolled back: nothing earlier is left to go back to.
    const third = await admin(t.url, '/models/adder/rollback')
    expect(third.status).toBe(409)
    expect(third.body.error.code).toBe('conflict')
    expect((await modelDetail(t.url, 'adder')).active).toBe(1)
  })

  it('POST /rollback acts on the default model', async () => {
    const t = await servingChain([2])
    const r = await admin(t.url, '/rollback', {})
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ model: 'adder', from: 2, to: 1, warm: true })
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
  })

  it('POST /rollback with several models rolls back --default-model only, and says so when there is none', async () => {
    const t = await serve(
      async (dir) => {
        await writeConstVersion(dir, 'a', 1)
        await writeConstVersion(dir, 'b', 1)
      },
      { defaultModel: 'b' },
    )
    for (const m of ['a', 'b']) {
      await dropVersion(t.modelsDir, m, 2, addConstModel(2))
      await waitActive(t.url, m, 2)
    }
    const r = await admin(t.url, '/rollback')
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ model: 'b', to: 1 })
    expect((await modelDetail(t.url, 'a')).active).toBe(2)
    expect((await modelDetail(t.url, 'b')).active).toBe(1)

    const u = await serve(async (dir) => {
      await writeConstVersion(dir, 'a', 1)
      await writeConstVersion(dir, 'b', 1)
    })
    const none = await admin(u.url, '/rollback')
    expect(none.status).toBe(404)
    expect(none.body.error.code).toBe('no_default_model')
  })

  it('takes an explicit {"version", "reason"}; the reason is in the version state and the history', async () => {
    const t = await servingChain([2, 3])
    const reason = 'v3 mislabels every cat as a dog'
    const r = await admin(t.url, '/models/adder/rollback', { version: 1, reason })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ from: 3, to: 1, warm: true, reason })
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
    const detail = await modelDetail(t.url, 'adder')
    expect(versionView(detail, 3)).toMatchObject({ status: 'rolled_back', rolledBack: { reason } })
    const last = (await historyOf(t.url, 'adder')).at(-1)
    expect(last).toMatchObject({ event: 'rolled_back', version: 3, to: 1, reason, warm: true })
  })

  it('to a version that is no longer loaded (retain 0) loads and gates it first: warm false', async () => {
    const t = await servingChain([2], { modelJson: { retain: 0 }, smoke: true })
    expect((await modelDetail(t.url, 'adder')).retained).toEqual([])
    const r = await admin(t.url, '/models/adder/rollback')
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ from: 2, to: 1, warm: false })
    const stages = Object.fromEntries(
      r.body.stages.map((s: { stage: string; status: string }) => [s.stage, s.status]),
    )
    expect(stages).toMatchObject({ load: 'passed', smoke: 'passed', warmup: 'passed' })
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
    expect(versionView(await modelDetail(t.url, 'adder'), 2).status).toBe('rolled_back')
  })

  it('to a version older than the retained window is cold too', async () => {
    const t = await servingChain([2, 3], { modelJson: { retain: 1 } })
    expect((await modelDetail(t.url, 'adder')).retained).toEqual([2])
    const r = await admin(t.url, '/models/adder/rollback', { version: 1 })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ from: 3, to: 1, warm: false })
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
  })

  it('cold: a target that now fails its gate is refused with 422 and the current version keeps serving', async () => {
    const t = await servingChain([2], { modelJson: { retain: 0 }, smoke: true })
    // The model file of v1 is unchanged; its own smoke case now expects something else.
    await writeFile(join(t.modelsDir, 'adder', '1', 'smoke.json'), smokeFor(1, 0.5))
    const r = await admin(t.url, '/models/adder/rollback')
    expect(r.status).toBe(422)
    expect(r.body.error.code).toBe('gate_failed')
    expect(
      r.body.error.details.stages.find((s: { stage: string }) => s.stage === 'smoke'),
    ).toMatchObject({ status: 'failed' })
    expect(await predict(t.url)).toMatchObject({ version: 2, constant: 2 })
    expect((await modelDetail(t.url, 'adder')).active).toBe(2)
  })

  it('refuses what cannot be done: 409 with nothing to go back to or to the active version, 404 for unknown ones', async () => {
    const t = await serve((dir) => writeConstVersion(dir, 'adder', 1))
    const nothing = await admin(t.url, '/models/adder/rollback')
    expect(nothing.status).toBe(409)
    expect(nothing.body.error.code).toBe('conflict')

    await dropVersion(t.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(t.url, 'adder', 2)
    const toActive = await admin(t.url, '/models/adder/rollback', { version: 2 })
    expect(toActive.status).toBe(409)
    expect(toActive.body.error.code).toBe('conflict')
    const unknown = await admin(t.url, '/models/adder/rollback', { version: 9 })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe('version_not_found')
    const noModel = await admin(t.url, '/models/nope/rollback')
    expect(noModel.status).toBe(404)
    expect(noModel.body.error.code).toBe('model_not_found')
    // None of that changed anything.
    expect(await predict(t.url)).toMatchObject({ version: 2, constant: 2 })
  })

  it('refuses a version that was rejected by its gate with 409', async () => {
    const t = await serve((dir) => writeConstVersion(dir, 'adder', 1, { smoke: true }))
    await dropVersion(t.modelsDir, 'adder', 2, addConstModel(2), { 'smoke.json': smokeFor(2, 0.5) })
    await waitStatus(t.url, 'adder', 2, 'rejected')
    const r = await admin(t.url, '/models/adder/rollback', { version: 2 })
    expect(r.status).toBe(409)
    expect(r.body.error.code).toBe('conflict')
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
  })

  it('to a version that never served is gated in full: an incompatible signature is refused', async () => {
    // Version 2 wins at start; version 1 (input named 'a', not 'x') never served and was never gated.
    const t = await serve(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1, 4, { inputName: 'a' }))
      await writeConstVersion(dir, 'adder', 2)
    })
    expect((await modelDetail(t.url, 'adder')).active).toBe(2)
    const r = await admin(t.url, '/models/adder/rollback', { version: 1 })
    // Skipping the signature stage is only sound for a version that served before: the gate
    // runs it, and it fails.
    expect(r.status, JSON.stringify(r.body)).toBe(422)
    expect(r.body.error.code).toBe('gate_failed')
    const stages = r.body.error.details.stages as {
      stage: string
      status: string
      reason?: string
      message?: string
    }[]
    const failed = stages.filter((s) => s.status === 'failed')
    expect(failed).toEqual([
      expect.objectContaining({ stage: 'signature', reason: 'signature_changed' }),
    ])
    expect(failed[0]!.message).toMatch(/input 'x' is gone/)
    expect(failed[0]!.message).toMatch(/'a' is new/)
    const detail = await modelDetail(t.url, 'adder')
    expect(versionView(detail, 1)).toMatchObject({
      status: 'rejected',
      stage: 'signature',
      reason: 'signature_changed',
    })
    expect(detail.active).toBe(2)
    expect(detail.signature.inputs.map((i: { name: string }) => i.name)).toEqual(['x'])
    expect(await predict(t.url)).toMatchObject({ status: 200, version: 2, constant: 2 })
  })

  it('answers a malformed body with 400 and changes nothing', async () => {
    const t = await servingChain([2])
    for (const [body, code] of [
      [{ version: '1' }, 'invalid_request'],
      [{ version: 0 }, 'invalid_request'],
      [{ version: 1.5 }, 'invalid_request'],
      [{ reason: 5 }, 'invalid_request'],
      [{ version: 1, because: 'x' }, 'invalid_request'],
      [[1], 'invalid_request'],
      ['{"version": ', 'invalid_json'],
    ] as const) {
      const r = await admin(t.url, '/models/adder/rollback', body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(r.body.error.code, JSON.stringify(body)).toBe(code)
    }
    expect((await modelDetail(t.url, 'adder')).active).toBe(2)
  })

  it('a newer file version is still auto-promoted after a rollback', async () => {
    const t = await servingChain([2])
    expect((await admin(t.url, '/models/adder/rollback')).status).toBe(200)
    await dropVersion(t.modelsDir, 'adder', 3, addConstModel(3))
    await waitActive(t.url, 'adder', 3)
    expect(await predict(t.url)).toMatchObject({ version: 3, constant: 3 })
    expect(versionView(await modelDetail(t.url, 'adder'), 2).status).toBe('rolled_back')
  })
})

describe('promote', () => {
  it('promotes an older present version through the gate', async () => {
    const t = await serve(async (dir) => {
      await writeConstVersion(dir, 'adder', 1, { smoke: true })
      await writeConstVersion(dir, 'adder', 2, { smoke: true })
    })
    expect((await modelDetail(t.url, 'adder')).active).toBe(2)
    const r = await admin(t.url, '/models/adder/promote', { version: 1 })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ model: 'adder', from: 2, to: 1, warm: false })
    const stages = Object.fromEntries(
      r.body.stages.map((s: { stage: string; status: string }) => [s.stage, s.status]),
    )
    expect(stages).toMatchObject({
      load: 'passed',
      signature: 'passed',
      smoke: 'passed',
      warmup: 'passed',
    })
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
    const last = (await historyOf(t.url, 'adder')).at(-1)
    expect(last).toMatchObject({ event: 'promoted', version: 1, trigger: 'admin', from: 2 })
  })

  it('switches to a retained version at once (warm)', async () => {
    const t = await servingChain([2, 3])
    const r = await admin(t.url, '/models/adder/promote', { version: 1 })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ from: 3, to: 1, warm: true })
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })
    // 3 was replaced, not rolled back: it is retained, and a promote brings it back warm.
    expect(versionView(await modelDetail(t.url, 'adder'), 3).status).toBe('retained')
    expect((await admin(t.url, '/models/adder/promote', { version: 3 })).body).toMatchObject({
      to: 3,
      warm: true,
    })
  })

  it('brings back a rolled-back version; it is then an ordinary active version', async () => {
    const t = await servingChain([2], { smoke: true })
    expect((await admin(t.url, '/models/adder/rollback')).status).toBe(200)
    expect(versionView(await modelDetail(t.url, 'adder'), 2).status).toBe('rolled_back')
    const r = await admin(t.url, '/models/adder/promote', { version: 2 })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ from: 1, to: 2 })
    expect(await predict(t.url)).toMatchObject({ version: 2, constant: 2 })
    const v2 = versionView(await modelDetail(t.url, 'adder'), 2)
    expect(v2.status).toBe('active')
    expect(v2.rolledBack).toBeUndefined()
  })

  it('answers 422 gate_failed with every stage for a version failing its gate; force skips the smoke tests', async () => {
    const t = await serve((dir) => writeConstVersion(dir, 'adder', 1, { smoke: true }))
    await dropVersion(t.modelsDir, 'adder', 2, addConstModel(2), { 'smoke.json': smokeFor(2, 0.5) })
    await waitStatus(t.url, 'adder', 2, 'rejected')

    const refused = await admin(t.url, '/models/adder/promote', { version: 2 })
    expect(refused.status).toBe(422)
    expect(refused.body.error.code).toBe('gate_failed')
    const stages = refused.body.error.details.stages as { stage: string; status: string }[]
    expect(stages.map((s) => s.stage)).toEqual(
      expect.arrayContaining(['load', 'signature', 'smoke']),
    )
    expect(stages.find((s) => s.stage === 'smoke')!.status).toBe('failed')
    expect(await predict(t.url)).toMatchObject({ version: 1, constant: 1 })

    const forced = await admin(t.url, '/models/adder/promote', { version: 2, force: true })
    expect(forced.status).toBe(200)
    expect(forced.body).toMatchObject({ from: 1, to: 2 })
    expect(forced.body.stages.find((s: { stage: string }) => s.stage === 'smoke')).toMatchObject({
      status: 'skipped',
    })
    expect(await predict(t.url)).toMatchObject({ version: 2, constant: 2 })
  })

  it('refuses a version that is neither loaded nor on disk with 409', async () => {
    const t = await servingChain([2], { modelJson: { retain: 0 } })
    await rm(join(t.modelsDir, 'adder', '1'), { recursive: true })
    await waitStatus(t.url, 'adder', 1, 'missing')
    const r = await admin(t.url, '/models/adder/promote', { version: 1 })
    expect(r.status).toBe(409)
    expect(r.body.error.code).toBe('conflict')
    const back = await admin(t.url, '/models/adder/rollback')
    expect(back.status).toBe(409)
    expect(await predict(t.url)).toMatchObject({ version: 2, constant: 2 })
  })

  it('refuses the active version (409), unknown versions and models (404) and malformed bodies (400)', async () => {
    const t = await servingChain([2])
    const active = await admin(t.url, '/models/adder/promote', { version: 2 })
    expect(active.status).toBe(409)
    expect(active.body.error.code).toBe('conflict')
    const unknown = await admin(t.url, '/models/adder/promote', { version: 7 })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe('version_not_found')
    const noModel = await admin(t.url, '/models/nope/promote', { version: 1 })
    expect(noModel.status).toBe(404)
    expect(noModel.body.error.code).toBe('model_not_found')
    for (const body of [
      {},
      { version: 0 },
      { version: -1 },
      { version: '1' },
      { version: 1, force: 'yes' },
      { version: 1, extra: true },
      [1],
    ]) {
      const r = await admin(t.url, '/models/adder/promote', body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(r.body.error.code, JSON.stringify(body)).toBe('invalid_request')
    }
    for (const body of ['{"version": 1', undefined]) {
      const r = await admin(t.url, '/models/adder/promote', body)
      expect(r.status, String(body)).toBe(400)
      expect(r.body.error.code).toBe('invalid_json')
    }
    expect(await predict(t.url)).toMatchObject({ version: 2, constant: 2 })
  })
})

describe('history', () => {
  it('lists the events in order, oldest first, and honours limit', async () => {
    const t = await servingChain([2])
    expect((await admin(t.url, '/models/adder/rollback', { reason: 'bad' })).status).toBe(200)
    const entries = await historyOf(t.url, 'adder')
    expect(entries.map((e) => [e.event, e.version])).toEqual([
      ['promoted', 1],
      ['promoted', 2],
      ['rolled_back', 2],
    ])
    expect(entries[0]).toMatchObject({
      model: 'adder',
      trigger: 'startup',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    })
    expect(entries[1]).toMatchObject({ trigger: 'watch', from: 1 })
    expect(entries[2]).toMatchObject({ to: 1, reason: 'bad' })
    const times = entries.map((e) => Date.parse(e.time))
    expect([...times].sort((a, b) => a - b)).toEqual(times)

    const last = await getJson(`${t.url}/models/adder/history?limit=1`)
    expect(last.status).toBe(200)
    expect(last.body.entries).toHaveLength(1)
    expect(last.body.entries[0]).toMatchObject({ event: 'rolled_back' })
  })

  it('refuses a bad limit with 400 and an unknown model with 404', async () => {
    const t = await serve((dir) => writeConstVersion(dir, 'adder', 1))
    for (const limit of ['0', '-1', '1.5', 'abc', '201', '']) {
      const r = await getJson(`${t.url}/models/adder/history?limit=${limit}`)
      expect(r.status, `limit=${limit}`).toBe(400)
      expect(r.body.error.code).toBe('invalid_request')
    }
    const r = await getJson(`${t.url}/models/nope/history`)
    expect(r.status).toBe(404)
    expect(r.body.error.code).toBe('model_not_found')
  })
})

describe('admin auth', () => {
  const TOKEN = 'an-admin-token-of-some-length'
  const routes = [
    ['POST', '/rollback'],
    ['POST', '/models/adder/rollback'],
    ['POST', '/models/adder/promote'],
    ['GET', '/models/adder/history'],
    ['GET', '/events'],
  ] as const

  function call(url: string, method: string, path: string, headers: Record<string, string> = {}) {
    return requestJson(`${url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      ...(method === 'POST' && { body: path.endsWith('promote') ? '{"version": 1}' : '{}' }),
    })
  }

  async function withToken(): Promise<TestServer> {
    const t = await serve(
      (dir) => writeConstVersion(dir, 'adder', 1),
      {},
      { MODELGATE_ADMIN_TOKEN: TOKEN },
    )
    await dropVersion(t.modelsDir, 'adder', 2, addConstModel(2))
    await waitActive(t.url, 'adder', 2)
    return t
  }

  it('with a token: no Authorization is 401 with WWW-Authenticate, on every admin route, even from loopback', async () => {
    const t = await withToken()
    for (const [method, path] of routes) {
      const r = await call(t.url, method, path)
      expect(r.status, `${method} ${path}`).toBe(401)
      expect(r.body.error.code).toBe('unauthorized')
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer\b/)
    }
    expect((await modelDetail(t.url, 'adder')).active).toBe(2)
    // Requests need no token.
    expect(await predict(t.url)).toMatchObject({ status: 200, version: 2 })
  })

  it('with a token: a wrong token or scheme is 401 and changes nothing; the right one is served', async () => {
    const t = await withToken()
    for (const authorization of [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      'Bearer ',
      `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`,
      TOKEN,
    ]) {
      const r = await call(t.url, 'POST', '/models/adder/rollback', { authorization })
      expect(r.status, authorization).toBe(401)
      expect(r.body.error.code).toBe('unauthorized')
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer\b/)
    }
    expect((await modelDetail(t.url, 'adder')).active).toBe(2)

    const history = await call(t.url, 'GET', '/models/adder/history', {
      authorization: `Bearer ${TOKEN}`,
    })
    expect(history.status).toBe(200)
    const rollback = await call(t.url, 'POST', '/models/adder/rollback', {
      authorization: `Bearer ${TOKEN}`,
    })
    expect(rollback.status).toBe(200)
    expect(rollback.body).toMatchObject({ from: 2, to: 1 })
    const promote = await call(t.url, 'POST', '/models/adder/promote', {
      authorization: `bearer ${TOKEN}`,
    })
    expect(promote.status).toBe(409) // version 1 is active now: authorized, then refused on the merits
  })

  it('with a token: path spellings that reach an admin route are authenticated too', async () => {
    const t = await withToken()
    // Raw request targets: fetch would normalize the dot segments away.
    const raw = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(t.url)
        const req = httpRequest(
          {
            host: u.hostname,
            port: u.port,
            path,
            method: 'POST',
            headers: { 'content-type': 'application/json', 'content-length': 2 },
          },
          (res) => {
            res.resume()
            res.on('end', () => resolve(res.statusCode!))
          },
        )
        req.on('error', reject)
        req.end('{}')
      })
    for (const path of [
      '/models/ad%64er/rollback',
      '/models/adder/%72ollback',
      '/models/adder/./rollback',
      '/models/x/../adder/rollback',
      '/rollback?x=1',
      '/models/adder/rollback/',
      '//models/adder/rollback',
      '/ROLLBACK',
    ]) {
      const status = await raw(path)
      expect([401, 404], path).toContain(status)
    }
    expect((await modelDetail(t.url, 'adder')).active).toBe(2)
  })

  it('refuses admin tokens shorter than 16 characters at config time', () => {
    expect(() =>
      loadServeConfig({ models: '.' }, { MODELGATE_ADMIN_TOKEN: 'short-token' }),
    ).toThrow(ConfigError)
    expect(() =>
      loadServeConfig({ models: '.' }, { MODELGATE_ADMIN_TOKEN: '123456789012345' }),
    ).toThrow(/16/)
    expect(
      loadServeConfig({ models: '.' }, { MODELGATE_ADMIN_TOKEN: '1234567890123456' }).adminToken,
    ).toBe('1234567890123456')
    expect(loadServeConfig({ models: '.' }, {}).adminToken).toBeUndefined()
  })

  it('reads the token from --admin-token-file, with the same 16-character minimum', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'short'), 'short-token\n')
    await writeFile(join(dir, 'good'), `${TOKEN}\n`)
    expect(() => loadServeConfig({ models: '.', adminTokenFile: join(dir, 'short') }, {})).toThrow(
      ConfigError,
    )
    expect(loadServeConfig({ models: '.', adminTokenFile: join(dir, 'good') }, {}).adminToken).toBe(
      TOKEN,
    )
    expect(() => loadServeConfig({ models: '.', adminTokenFile: join(dir, 'absent') }, {})).toThrow(
      /--admin-token-file/,
    )
  })

  it('without a token: loopback clients are served', async () => {
    const t = await servingChain([2])
    expect((await call(t.url, 'GET', '/models/adder/history')).status).toBe(200)
    expect((await call(t.url, 'POST', '/models/adder/rollback')).status).toBe(200)
  })

  it('without a token: a page from another origin in a browser on this machine is refused (no cross-site rollback)', async () => {
    const t = await servingChain([2])
    // What a browser sends with a form or fetch() from another site: its Origin, or Sec-Fetch-Site.
    for (const headers of [
      { origin: 'http://evil.example' } as Record<string, string>,
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
    ]) {
      const r = await call(t.url, 'POST', '/models/adder/rollback', headers)
      expect(r.status, JSON.stringify(headers)).toBe(403)
      expect(r.body.error.message).toContain('another origin')
    }
    expect((await call(t.url, 'GET', '/models/adder')).body.active).toBe(2)
    // The dashboard's own requests, and clients that are not browsers (curl, the CLI), are served.
    const own = await call(t.url, 'POST', '/models/adder/rollback', {
      origin: t.url,
      'sec-fetch-site': 'same-origin',
    })
    expect(own.status, JSON.stringify(own.body)).toBe(200)
  })

  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address
  const itExternal = external ? it : it.skip
  if (!external)
    console.warn(
      'admin auth: no non-loopback IPv4 address on this machine; the non-loopback refusal test is skipped',
    )

  itExternal(
    `without a token: a non-loopback client (via ${external}) gets 403 on admin routes, and is served with a token`,
    async () => {
      const t = await serve((dir) => writeConstVersion(dir, 'adder', 1), { host: '0.0.0.0' })
      const remote = `http://${external}:${t.server.port}`
      for (const [method, path] of routes) {
        const r = await call(remote, method, path)
        expect(r.status, `${method} ${path}`).toBe(403)
        expect(r.body.error.code).toBe('forbidden')
      }
      expect(await predict(remote)).toMatchObject({ status: 200, version: 1 })
      const local = `http://127.0.0.1:${t.server.port}`
      expect((await call(local, 'GET', '/models/adder/history')).status).toBe(200)

      const u = await serve(
        (dir) => writeConstVersion(dir, 'adder', 1),
        { host: '0.0.0.0' },
        { MODELGATE_ADMIN_TOKEN: TOKEN },
      )
      const remoteU = `http://${external}:${u.server.port}`
      expect((await call(remoteU, 'GET', '/models/adder/history')).status).toBe(401)
      expect(
        (await call(remoteU, 'GET', '/models/adder/history', { authorization: `Bearer ${TOKEN}` }))
          .status,
      ).toBe(200)
    },
  )
})
