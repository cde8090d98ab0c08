import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { mkdir, symlink, truncate, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import {
  getJson,
  historyOf,
  modelDetail,
  versionView,
  waitReason,
  waitStatus,
} from '../support/api-client.js'
import { addConstModel, identityModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitFor } from '../support/wait-for.js'

/**
 * Files in the models directory that are not what they claim: FIFOs, symlinks to /etc/passwd and
 * /dev/zero, sparse files of 20 GB, fixed dims of 1e12. None of them may wedge the server, leak a
 * server path, a stack trace or another file's contents through the API, or be judged again on
 * every rescan.
 */

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path])
}

/**
 * Lets go of whoever is blocked opening these FIFOs for reading (a server without the fix):
 * opening the write end completes their open, closing it gives them end of file.
 */
function releaseFifos(paths: readonly string[]): void {
  for (const path of paths) {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK))
    } catch {
      // no reader (ENXIO) or gone: nobody to release
    }
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** Every pass over a model lists its folder; a `notes.txt` in it is logged (debug) on each one. */
function passesOver(t: TestServer, model: string): number {
  return t.logs.filter(
    (l) => l.event === 'path_ignored' && String(l.path).endsWith(`/${model}/notes.txt`),
  ).length
}

async function morePasses(t: TestServer, model: string, n: number): Promise<void> {
  const from = passesOver(t, model)
  await waitFor(() => passesOver(t, model) >= from + n, `${n} more passes over '${model}'`)
}

function logsOf(t: TestServer, event: string, model: string): number {
  return t.logs.filter((l) => l.event === event && l.model === model).length
}

async function withNotes(modelsDir: string, model: string): Promise<void> {
  await mkdir(join(modelsDir, model), { recursive: true })
  await writeFile(join(modelsDir, model, 'notes.txt'), 'not a version')
}

describe('FIFOs in place of model.json, smoke.json and sidecars', () => {
  const fifos: string[] = []
  let starting: Promise<TestServer> | undefined
  let t: TestServer

  afterAll(async () => {
    releaseFifos(fifos)
    await withDeadline(starting!, 10_000, 'the server to start once the FIFOs were released')
      .then((s) => s.close())
      .catch(() => undefined)
  })

  it('neither wedge the server nor get read: each is a problem of its model, reported once', async () => {
    starting = startTestServer(
      async (dir) => {
        // More models than the libuv threadpool has threads: each blocked open used to take one.
        for (let i = 0; i < 6; i++) {
          await writeVersion(dir, `config-${i}`, 1, addConstModel(1))
          await withNotes(dir, `config-${i}`)
          fifos.push(join(dir, `config-${i}`, 'model.json'))
        }
        await writeVersion(dir, 'smoke', 1, addConstModel(1))
        fifos.push(join(dir, 'smoke', 'smoke.json'))
        await writeVersion(dir, 'version-smoke', 1, addConstModel(1))
        fifos.push(join(dir, 'version-smoke', '1', 'smoke.json'))
        await writeVersion(dir, 'sidecar', 1, addConstModel(1))
        await withNotes(dir, 'sidecar')
        fifos.push(join(dir, 'sidecar', '1', 'model.onnx.sha256'))
        await writeVersion(dir, 'ok', 1, addConstModel(1))
        for (const f of fifos) mkfifo(f)
      },
      { rescanMs: '100' },
    )
    t = await withDeadline(starting, 20_000, 'the initial load of a models directory with FIFOs')

    expect((await modelDetail(t.url, 'config-0')).configError).toBe(
      'config-0/model.json is not a regular file (a FIFO)',
    )
    await waitReason(t.url, 'smoke', 1, 'invalid_smoke_file')
    expect(versionView(await modelDetail(t.url, 'smoke'), 1)).toMatchObject({
      reason: 'invalid_smoke_file',
      message: 'smoke/smoke.json is not a regular file (a FIFO)',
    })
    await waitReason(t.url, 'version-smoke', 1, 'invalid_smoke_file')
    expect(versionView(await modelDetail(t.url, 'version-smoke'), 1)).toMatchObject({
      reason: 'invalid_smoke_file',
      message: 'version-smoke/1/smoke.json is not a regular file (a FIFO)',
    })
    await waitStatus(t.url, 'sidecar', 1, 'rejected')
    expect(versionView(await modelDetail(t.url, 'sidecar'), 1)).toMatchObject({
      stage: 'load',
      reason: 'not_a_regular_file',
      message: 'sidecar/1/model.onnx.sha256 is not a regular file (a FIFO)',
    })

    // The threadpool is free: a gzip request body is decoded, an admin call and state writes work.
    const gz = await fetch(`${t.url}/models/ok/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify({ inputs: [[1, 2, 3, 4]] })),
    })
    expect(gz.status).toBe(200)
    expect(await historyOf(t.url, 'ok')).toEqual([
      expect.objectContaining({ event: 'promoted', version: 1 }),
    ])
    expect((await getJson(`${t.url}/healthz`)).status).toBe(200)

    // Pass after pass, nothing is read again, and nothing is said twice.
    await morePasses(t, 'config-0', 5)
    await morePasses(t, 'sidecar', 5)
    expect(logsOf(t, 'model_config_invalid', 'config-0')).toBe(1)
    expect(logsOf(t, 'version_rejected', 'sidecar')).toBe(1)
    expect((await historyOf(t.url, 'sidecar')).filter((e) => e.event === 'rejected')).toHaveLength(
      1,
    )
  })
})

describe('a 20 GB sparse version file', () => {
  let t: TestServer
  afterAll(() => t?.close())

  it('is judged once per file identity, not on every rescan', async () => {
    let big = ''
    t = await startTestServer(
      async (dir) => {
        await writeVersion(dir, 'sparse', 1, addConstModel(1))
        await withNotes(dir, 'sparse')
        big = join(dir, 'sparse', '2.onnx')
        await writeFile(big, '')
        await truncate(big, 20 * 2 ** 30)
        const old = Date.now() / 1000 - 3600 // long stable: read at once
        await utimes(big, old, old)
      },
      { rescanMs: '100' },
    )
    await waitStatus(t.url, 'sparse', 2, 'rejected')
    await morePasses(t, 'sparse', 5)
    expect(logsOf(t, 'version_rejected', 'sparse')).toBe(1)
    const rejected = async () =>
      (await historyOf(t.url, 'sparse')).filter((e) => e.event === 'rejected' && e.version === 2)
    expect(await rejected()).toHaveLength(1)
    expect(versionView(await modelDetail(t.url, 'sparse'), 2)).toMatchObject({
      stage: 'load',
      reason: 'too_large',
      message:
        'sparse/2.onnx is 21474836480 bytes, over the limit of 2147483647 bytes (--max-model-size; onnxruntime-node takes a model as one buffer)',
    })

    // Another identity (here a new mtime) is another file: judged again, once.
    const older = Date.now() / 1000 - 7200
    await utimes(big, older, older)
    await waitFor(
      () => logsOf(t, 'version_rejected', 'sparse') === 2,
      'the changed file to be judged',
    )
    await morePasses(t, 'sparse', 5)
    expect(logsOf(t, 'version_rejected', 'sparse')).toBe(2)
    expect(await rejected()).toHaveLength(2)
    expect((await modelDetail(t.url, 'sparse')).active).toBe(1)
  })
})

describe('API answers over hostile files', () => {
  let t: TestServer
  let tempRoot = ''
  const fifos: string[] = []
  afterAll(async () => {
    releaseFifos(fifos)
    await t?.close()
  })

  it('never show a server path, a stack trace or a refused file', async () => {
    t = await startTestServer(async (dir) => {
      tempRoot = dirname(dir)
      const good = addConstModel(1)
      // A fixed dim of 1e12 and no smoke cases: the gate used to allocate the synthesized input.
      await writeVersion(dir, 'huge', 1, identityModel('float32', [1e12]))
      for (const [model, file, target] of [
        ['passwd-config', 'model.json', '/etc/passwd'],
        ['zero-config', 'model.json', '/dev/zero'],
        ['passwd-smoke', 'smoke.json', '/etc/passwd'],
      ] as const) {
        await writeVersion(dir, model, 1, good)
        await symlink(target, join(dir, model, file))
      }
      await writeVersion(dir, 'big-config', 1, good)
      await writeFile(
        join(dir, 'big-config', 'model.json'),
        `{"retain": 1, "pad": "${' '.repeat(2 ** 20)}"}`,
      )
      await writeVersion(dir, 'text-config', 1, good)
      await writeFile(join(dir, 'text-config', 'model.json'), 'root:x:0:0:root:/root:/bin/bash\n')
      await mkdir(join(dir, 'sparse'))
      await writeFile(join(dir, 'sparse', '1.onnx'), '')
      await truncate(join(dir, 'sparse', '1.onnx'), 3 * 2 ** 30)
      await writeVersion(dir, 'mismatch', 1, good)
      await writeFile(
        join(dir, 'mismatch', '1', 'model.onnx.sha256'),
        `${'0'.repeat(64)}  model.onnx\n`,
      )
      await writeVersion(dir, 'ok', 1, good)
      await writeVersion(dir, 'ok', 2, addConstModel(2))
      fifos.push(join(dir, 'ok', '2', 'model.onnx.sha256'))
      mkfifo(fifos[0]!)
      await writeFile(join(tempRoot, 'outside.onnx'), good)
      await mkdir(join(dir, 'escape'))
      await symlink(join(tempRoot, 'outside.onnx'), join(dir, 'escape', '1.onnx'))
    })
    const models = [
      'huge',
      'passwd-config',
      'zero-config',
      'passwd-smoke',
      'big-config',
      'text-config',
      'sparse',
      'mismatch',
      'ok',
      'escape',
    ]
    for (const [model, version] of [
      ['huge', 1],
      ['sparse', 1],
      ['mismatch', 1],
      ['ok', 2],
    ] as const) {
      await waitStatus(t.url, model, version, 'rejected')
    }
    await waitReason(t.url, 'passwd-smoke', 1, 'invalid_smoke_file')

    const answers: { what: string; status: number; text: string }[] = []
    const ask = async (path: string, init?: RequestInit) => {
      const res = await fetch(`${t.url}${path}`, init)
      const answer = {
        what: `${init?.method ?? 'GET'} ${path}`,
        status: res.status,
        text: await res.text(),
      }
      answers.push(answer)
      return answer
    }
    const post = (path: string, body?: unknown) =>
      ask(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      })

    for (const path of ['/models', '/readyz', '/healthz', '/v2/models/stats', '/metrics'])
      await ask(path)
    for (const m of models) {
      for (const path of [
        `/models/${m}`,
        `/models/${m}/history`,
        `/v2/models/${m}`,
        `/v2/models/${m}/versions/1`,
        `/v2/models/${m}/ready`,
      ])
        await ask(path)
      await post(`/models/${m}/predict`, { inputs: [[1, 2, 3, 4]] })
      await post(`/models/${m}/rollback`)
    }
    await post('/v2/repository/index')
    expect((await post('/models/sparse/promote', { version: 1 })).status).toBe(409)
    expect((await post('/models/huge/promote', { version: 1 })).status).toBe(422)
    expect((await post('/models/escape/promote', { version: 1 })).status).toBe(404)
    await post('/models/mismatch/promote', { version: 1 })
    await post('/v2/repository/models/passwd-config/load')

    for (const a of answers) {
      const where = `${a.what} (${a.status}): ${a.text.slice(0, 300)}`
      expect(a.text, where).not.toContain(tempRoot)
      expect(a.text, where).not.toContain('    at ')
      expect(a.text, where).not.toContain('root:x:0')
      expect(a.text, where).not.toContain('/etc/passwd')
      expect(a.text, where).not.toContain('/dev/zero')
    }

    const detail = async (m: string) =>
      JSON.parse(answers.find((a) => a.what === `GET /models/${m}`)!.text)
    expect((await detail('passwd-config')).configError).toBe(
      'passwd-config/model.json resolves outside the models directory',
    )
    expect((await detail('zero-config')).configError).toBe(
      'zero-config/model.json resolves outside the models directory',
    )
    expect((await detail('big-config')).configError).toMatch(
      /^big-config\/model\.json is \d+ bytes, over the limit of 1 MiB$/,
    )
    expect((await detail('text-config')).configError).toBe(
      "text-config/model.json: not valid JSON: Unexpected token 'r'",
    )
    expect(versionView(await detail('huge'), 1)).toMatchObject({
      stage: 'smoke',
      reason: 'input_too_large',
    })
    expect(versionView(await detail('passwd-smoke'), 1)).toMatchObject({
      reason: 'invalid_smoke_file',
      message: 'passwd-smoke/smoke.json resolves outside the models directory',
    })
    expect(versionView(await detail('sparse'), 1)).toMatchObject({ reason: 'too_large' })
    expect(versionView(await detail('mismatch'), 1)).toMatchObject({ reason: 'checksum_mismatch' })
    expect(versionView(await detail('mismatch'), 1).message).toContain(
      'the sidecar mismatch/1/model.onnx.sha256 says 0000',
    )
    expect(versionView(await detail('ok'), 2)).toMatchObject({ reason: 'not_a_regular_file' })
    expect((await detail('ok')).active).toBe(1)
  })
})
