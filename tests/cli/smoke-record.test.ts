import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { smokeFileSchema } from '../../src/repository/smoke-file.js'
import { addConstModel, classifierModel, writeVersion } from '../support/models.js'
import { serve, tempDir } from '../support/servers.js'
import { runCli, ship } from './ship-cli.js'

/**
 * `modelgate smoke record` against a real server and real models: the smoke.json it writes gates
 * the next version, shipped with `modelgate ship --wait`.
 */

/** One row that each class wins, by a wide margin. */
const EACH_CLASS = {
  x: [
    [3, 0, 0],
    [0, 3, 0],
    [0, 0, 3],
  ],
}

async function inputsFile(json: unknown): Promise<string> {
  const file = join(await tempDir('smoke-inputs-'), 'samples.json')
  await writeFile(file, JSON.stringify(json))
  return file
}

/**
 * Ships `changed` then `kept` as the next versions: the recorded smoke.json must reject the first
 * (with `reason`) and let the second serve.
 */
async function expectGated(
  t: { url: string; modelsDir: string },
  model: string,
  versions: { changed: Uint8Array; kept: Uint8Array; reason: string },
) {
  const dir = await tempDir('smoke-ship-')
  const shipped = async (name: string, bytes: Uint8Array) => {
    await writeFile(join(dir, name), bytes)
    return ship(join(dir, name), t.modelsDir, model, '--wait', '--url', t.url)
  }
  const changed = await shipped('changed.onnx', versions.changed)
  expect(changed.status).toBe(1)
  expect(changed.stdout).toMatch(
    new RegExp(`^${model} \\d+: rejected at smoke: ${versions.reason}: `, 'm'),
  )
  const kept = await shipped('kept.onnx', versions.kept)
  expect(kept.stdout).toMatch(new RegExp(`^${model} \\d+: active;`, 'm'))
  expect(kept.status).toBe(0)
}

describe('modelgate smoke record', () => {
  it('records label cases of a classifier from the server; a version that changes labels is rejected, one that keeps them serves', async () => {
    const t = await serve(async (dir) => {
      await writeVersion(dir, 'clf', 1, classifierModel([0, 0, 0]))
    })
    const samples = await inputsFile([
      {
        name: 'each class',
        inputs: EACH_CLASS,
      },
      { inputs: [[0, 0.5, 0]] },
    ])
    const r = await runCli([
      'smoke',
      'record',
      'clf',
      '--inputs',
      samples,
      '--models',
      t.modelsDir,
      '--url',
      t.url,
    ])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^recorded 2 label \(label\) case\(s\) from clf 1 /)
    const written = JSON.parse(await readFile(join(t.modelsDir, 'clf', 'smoke.json'), 'utf8'))
    expect(smokeFileSchema.parse(written)).toEqual({
      minAccuracy: 1,
      cases: [
        {
          name: 'each class',
          inputs: EACH_CLASS,
          label: { output: 'label', value: [0, 1, 2] },
        },
        { name: 'samples.json#1', inputs: [[0, 0.5, 0]], label: { output: 'label', value: 1 } },
      ],
    })

    await expectGated(t, 'clf', {
      changed: classifierModel([0, 0, 10]),
      kept: classifierModel([0.1, 0, 0]),
      reason: 'below_min_accuracy',
    })
  })

  it('records expect cases locally from the version state.json records as active, and refuses to overwrite without --force', async () => {
    const t = await serve(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
      await writeVersion(dir, 'adder', 2, addConstModel(2))
    })
    const samples = await inputsFile({ inputs: [[1, 2, 3, 4]] })
    const args = ['smoke', 'record', 'adder', '--inputs', samples, '--models', t.modelsDir]
    const r = await runCli(args)
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/from adder 2 \(.*active in state\.json\)/)
    const written = JSON.parse(await readFile(join(t.modelsDir, 'adder', 'smoke.json'), 'utf8'))
    expect(written).toEqual({
      tolerance: { atol: 1e-5, rtol: 1e-3 },
      cases: [
        {
          name: 'samples.json#0',
          inputs: [[1, 2, 3, 4]],
          expect: { y: { type: 'float32', shape: [1, 4], data: [3, 4, 5, 6] } },
        },
      ],
    })
    const again = await runCli(args)
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(/smoke\.json exists; --force replaces it/)
    expect((await runCli([...args, '--force'])).status).toBe(0)

    await expectGated(t, 'adder', {
      changed: addConstModel(2.5),
      kept: addConstModel(2.000001),
      reason: 'expect_mismatch',
    })
  })

  it('exits 1 naming an unknown model or a case the model refuses, 3 for a server that does not answer', async () => {
    const t = await serve(async (dir) => {
      await writeVersion(dir, 'adder', 1, addConstModel(1))
    })
    const out = join(await tempDir('smoke-out-'), 'smoke.json')
    const good = await inputsFile({ inputs: [[1, 2, 3, 4]] })
    const unknown = await runCli([
      'smoke',
      'record',
      'nosuch',
      '--inputs',
      good,
      '--url',
      t.url,
      '--out',
      out,
    ])
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toMatch(/has no model 'nosuch'/)
    const wrong = await inputsFile([{ name: 'three wide', inputs: [[1, 2, 3]] }])
    const refused = await runCli([
      'smoke',
      'record',
      'adder',
      '--inputs',
      wrong,
      '--url',
      t.url,
      '--out',
      out,
    ])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toMatch(/case 'three wide': \w+: /)
    const down = await runCli([
      'smoke',
      'record',
      'adder',
      '--inputs',
      good,
      '--url',
      'http://127.0.0.1:9',
      '--out',
      out,
    ])
    expect(down.status).toBe(3)
    expect((await runCli(['smoke', 'record', 'adder', '--inputs', good])).status).toBe(2)
  })
})
