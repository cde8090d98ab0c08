import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { sha256Hex } from '../../src/repository/read-version.js'
import { modelDetail, postJson, versionView } from '../support/api-client.js'
import { addConstModel, nanModel, writeVersion } from '../support/models.js'
import { serve, tempDir } from '../support/servers.js'
import { runCli, ship } from './ship-cli.js'

/** `modelgate ship` against a real server over the models directory it writes to. */

async function modelFile(bytes: Uint8Array | string): Promise<string> {
  const file = join(await tempDir('ship-file-'), 'candidate.onnx')
  await writeFile(file, bytes)
  return file
}

async function adderServer() {
  return serve(async (dir) => {
    await writeVersion(dir, 'adder', 1, addConstModel(1))
  })
}

describe('modelgate ship', () => {
  it('ships the next version with its sidecar, removes the staging folder, and --wait exits 0 once it serves', async () => {
    const t = await adderServer()
    const file = await modelFile(addConstModel(2))
    const r = await ship(file, t.modelsDir, 'adder', '--wait', '--url', t.url)
    expect(r.stderr).not.toMatch(/modelgate:/)
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^shipped .* as adder 2 /m)
    expect(r.stdout).toMatch(
      /^adder 2: active \(unverified: no smoke cases\); on probation until /m,
    )
    const bytes = await readFile(file)
    expect(await readFile(join(t.modelsDir, 'adder', '2', 'model.onnx.sha256'), 'utf8')).toBe(
      `${sha256Hex(bytes)}  model.onnx\n`,
    )
    expect((await readdir(t.modelsDir)).filter((n) => n !== '.modelgate')).toEqual(['adder'])
    const answer = await postJson(`${t.url}/models/adder/predict`, { inputs: [[1, 2, 3, 4]] })
    expect(answer.body.version).toBe(2)
  })

  it('--wait exits 1 with the stage and reason of a rejection', async () => {
    const t = await adderServer()
    const r = await ship(
      await modelFile(nanModel()),
      t.modelsDir,
      'adder',
      '--wait',
      '--url',
      t.url,
    )
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/^adder 2: rejected at smoke: non_finite_output: /m)
    expect(versionView(await modelDetail(t.url, 'adder'), 2).status).toBe('rejected')
  })

  it('refuses a version that exists, a file that is not ONNX, and an unknown model, writing nothing', async () => {
    const t = await adderServer()
    const good = await modelFile(addConstModel(2))
    const taken = await ship(good, t.modelsDir, 'adder', '--version', '1')
    expect(taken.status).toBe(1)
    expect(taken.stderr).toMatch(/version 1 of 'adder' exists/)
    const text = await ship(await modelFile('not a model at all\n'), t.modelsDir, 'adder')
    expect(text.status).toBe(1)
    expect(text.stderr).toMatch(/is not an ONNX model/)
    const unknown = await ship(good, t.modelsDir, 'addr', '--wait', '--url', t.url)
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toMatch(/there is no model 'addr' .* add --create/)
    expect(await readdir(t.modelsDir)).toEqual(expect.not.arrayContaining(['addr', '.staging']))
    expect(await readdir(join(t.modelsDir, 'adder'))).toEqual(['1'])
  })

  it('numbers after the highest version on disk, folder or flat file, rejected or not', async () => {
    const dir = join(await tempDir('ship-numbers-'), 'models')
    await writeVersion(dir, 'adder', 3, 'not a model')
    await writeFile(join(dir, 'adder', '7.onnx'), 'not a model either')
    const r = await ship(await modelFile(addConstModel(2)), dir, 'adder')
    expect(r.status).toBe(0)
    expect((await readdir(join(dir, 'adder'))).sort()).toEqual(['3', '7.onnx', '8'])
  })

  it('--create makes a new model, which --wait sees through to serving', async () => {
    const t = await adderServer()
    const r = await ship(
      await modelFile(addConstModel(5)),
      t.modelsDir,
      'fresh',
      '--create',
      '--wait',
      '--url',
      t.url,
    )
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^fresh 1: active \(unverified: no smoke cases\)/m)
  })

  it('exits 3 without writing when the server does not answer, 2 on a usage error', async () => {
    const t = await adderServer()
    const file = await modelFile(addConstModel(2))
    const r = await ship(file, t.modelsDir, 'adder', '--wait', '--url', 'http://127.0.0.1:9')
    expect(r.status).toBe(3)
    expect(r.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9\//)
    expect(await readdir(join(t.modelsDir, 'adder'))).toEqual(['1'])
    expect((await runCli(['ship', file, '--models', t.modelsDir])).status).toBe(2)
    expect(
      (await runCli(['ship', file, '--models', t.modelsDir, '--model', 'adder', '--version', '03']))
        .status,
    ).toBe(2)
  })
})
