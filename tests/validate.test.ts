import { spawnSync } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildModel } from '../src/onnx/builder.js'
import {
  addConstModel,
  identityModel,
  reshapeTo2x2Model,
  writeModelFile,
  writeVersion,
} from './support/models.js'
import { makeTempDir, startServerOver } from './support/test-server.js'
import { waitFor } from './support/wait-for.js'

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js')

function validate(...args: string[]) {
  return spawnSync(process.execPath, [CLI, 'validate', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
}

/** y = x + c, but returns NaN for every input (0 * Inf). */
function nanModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', 4] }],
    initializers: [
      { name: 'zero', type: 'float32', dims: [], data: new Float32Array([0]) },
      { name: 'inf', type: 'float32', dims: [], data: new Float32Array([Infinity]) },
    ],
    nodes: [
      { op: 'Mul', inputs: ['x', 'zero'], outputs: ['z'] },
      { op: 'Mul', inputs: ['z', 'inf'], outputs: ['y'] },
    ],
  })
}

describe('modelgate validate', () => {
  let root: string
  let model: string
  beforeAll(async () => {
    root = await makeTempDir()
    model = join(root, 'adder')
    await writeVersion(root, 'adder', 1, addConstModel(1))
    await writeVersion(root, 'adder', 2, addConstModel(2))
    await writeVersion(root, 'adder', 3, nanModel())
    await writeVersion(
      root,
      'adder',
      4,
      identityModel('float32', ['batch', 4], { input: 'features', output: 'y' }),
    )
    await writeModelFile(join(model, '5.onnx'), addConstModel(5))
    await writeFile(
      join(model, 'smoke.json'),
      JSON.stringify({
        cases: [{ name: 'ones', inputs: { x: [[1, 1, 1, 1]] }, range: { y: { min: 0, max: 10 } } }],
      }),
    )
    await writeFile(
      join(model, '2', 'smoke.json'),
      JSON.stringify({
        cases: [{ name: 'v2 exact', inputs: { x: [[1, 2, 3, 4]] }, expect: { y: [[3, 4, 5, 6]] } }],
      }),
    )
  })
  afterAll(() => rm(root, { recursive: true, force: true }))

  it('passes a good version folder with exit 0 and a readable report', () => {
    const r = validate(join(model, '2'))
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/model 'adder', version 2/)
    expect(r.stdout).toMatch(/smoke\s+passed .*2 case\(s\) passed/)
    expect(r.stdout).toMatch(/warmup\s+passed/)
    expect(r.stdout.trim().endsWith('PASS')).toBe(true)
  })

  it('fails with exit 1 and says which stage and why', () => {
    const r = validate(join(model, '3'))
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/smoke\s+failed .*\[non_finite_output\]/)
    expect(r.stdout.trim().endsWith('FAIL')).toBe(true)
  })

  it('applies the version-level smoke cases of the version only', () => {
    // v1 + v2's exact case would fail (1 + x), but v2/smoke.json is not v1's.
    expect(validate(join(model, '1')).status).toBe(0)
  })

  it('takes a flat <v>.onnx file and a folder model.onnx', () => {
    expect(validate(join(model, '5.onnx')).status).toBe(0)
    const r = validate(join(model, '2', 'model.onnx'), '--json')
    expect(JSON.parse(r.stdout)).toMatchObject({ model: 'adder', version: 2, passed: true })
  })

  it('refuses a signature change against --active', () => {
    const r = validate(join(model, '4'), '--active', join(model, '1'), '--json')
    expect(r.status).toBe(1)
    const report = JSON.parse(r.stdout)
    expect(report.passed).toBe(false)
    const sig = report.stages.find((s: { stage: string }) => s.stage === 'signature')
    expect(sig).toMatchObject({ status: 'failed', reason: 'signature_changed' })
    expect(sig.message).toMatch(/input 'x' is gone/)
  })

  it('fails a version without smoke cases under --require-smoke', async () => {
    const lone = join(root, 'lone')
    await writeVersion(root, 'lone', 1, addConstModel(1))
    expect(validate(join(lone, '1')).stdout).toMatch(/PASS \(unverified/)
    const r = validate(join(lone, '1'), '--require-smoke')
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/smoke_required/)
  })

  it('fails with the file and path named when smoke.json is invalid', async () => {
    const broken = join(root, 'broken')
    await writeVersion(root, 'broken', 1, addConstModel(1))
    await writeFile(
      join(broken, 'smoke.json'),
      JSON.stringify({ cases: [{ inputs: { x: [[1, 1, 1, 1]] }, expected: {} }] }),
    )
    const r = validate(join(broken, '1'))
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/smoke\.json: cases\.0: Unrecognized key/)
  })

  it('exits 2 on usage errors', async () => {
    expect(validate().status).toBe(2)
    expect(validate(join(root, 'nope')).status).toBe(2)
    await mkdir(join(root, 'empty', '1'), { recursive: true })
    const r = validate(join(root, 'empty', '1'))
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/without model\.onnx/)
    expect(validate(join(model, '1'), '--bogus').status).toBe(2)
  })

  it('refuses a FIFO instead of waiting on it forever', async () => {
    const fifo = join(root, 'fifo.onnx')
    spawnSync('mkfifo', [fifo])
    const r = validate(fifo)
    expect(r.status).toBe(2)
    expect(r.stderr).toContain(`${fifo} is not a regular file (a FIFO)`)
  })

  it('says skipped, never passed, when the synthesized input of a model without smoke cases fails to run', async () => {
    await writeVersion(root, 'zeros', 1, reshapeTo2x2Model())
    const r = validate(join(root, 'zeros', '1'))
    expect(r.status, r.stdout).toBe(0)
    expect(r.stdout).toMatch(/smoke\s+skipped .*\[synthesized_input_failed\]/)
    expect(r.stdout).not.toMatch(/smoke\s+passed/)
  })

  it('warms up the way the server does: full batches for a batching model, smoke inputs for one that refuses zeros', async () => {
    const batched = JSON.parse(validate(join(model, '2'), '--json').stdout)
    expect(batched.stages.find((s: { stage: string }) => s.stage === 'warmup').message).toMatch(
      /batch size\(s\) 1, 64/,
    )
    await writeFile(
      join(root, 'zeros', 'smoke.json'),
      JSON.stringify({
        cases: [
          {
            inputs: { x: [1, 2, 3, 4] },
            expect: {
              y: [
                [1, 2],
                [3, 4],
              ],
            },
          },
        ],
      }),
    )
    const zeros = JSON.parse(validate(join(root, 'zeros', '1'), '--json').stdout)
    const warmup = zeros.stages.find((s: { stage: string }) => s.stage === 'warmup')
    expect(warmup).toMatchObject({ status: 'passed' })
    expect(warmup.reason).toBeUndefined() // warm-up ran (on the smoke input), it did not fail
  })
})

describe("modelgate validate against a server's state", () => {
  let root: string
  let models: string
  beforeAll(async () => {
    root = await makeTempDir()
    models = join(root, 'models')
    await writeVersion(models, 'adder', 1, addConstModel(1))
    // A server serves v1 and records it in <models>/.modelgate/state.json.
    const server = await startServerOver(models)
    await waitFor(() => server.server.registry.get('adder')?.active?.version === 1, 'v1 to serve')
    await server.close()
    await writeVersion(
      models,
      'adder',
      2,
      identityModel('float32', ['batch', 4], { input: 'features', output: 'y' }),
    )
  })
  afterAll(() => rm(root, { recursive: true, force: true }))

  it('holds a candidate to the active version recorded in state.json, as the server would', () => {
    const r = validate(join(models, 'adder', '2'))
    expect(r.status, r.stdout).toBe(1)
    expect(r.stdout).toMatch(/held to the active version 1 \(from state\.json/)
    expect(r.stdout).toMatch(/signature\s+failed .*\[signature_changed\]/)
  })

  it('judges it as a first version with --active none, and reads --state-dir', async () => {
    expect(validate(join(models, 'adder', '2'), '--active', 'none').status).toBe(0)
    const elsewhere = join(root, 'state-elsewhere')
    await mkdir(elsewhere)
    // An empty state directory: nothing serves there, so nothing to hold the candidate to.
    const r = validate(join(models, 'adder', '2'), '--state-dir', elsewhere)
    expect(r.status, r.stdout).toBe(0)
    expect(r.stdout).toMatch(/judged as a first version/)
  })

  it('does not claim to hold the active version to itself', () => {
    // v1 is what state.json records as serving: there is nothing to compare it with.
    const text = validate(join(models, 'adder', '1'))
    expect(text.status, text.stdout).toBe(0)
    expect(text.stdout).not.toMatch(/held to the active version/)
    expect(text.stdout).toMatch(/judged as a first version/)
    expect(text.stdout).toMatch(/is the version state\.json records as active/)
    const report = JSON.parse(validate(join(models, 'adder', '1'), '--json').stdout)
    expect(report.active).toBeNull()
    expect(report.stages.find((s: { stage: string }) => s.stage === 'signature').reason).toBe(
      'no_contract',
    )
  })

  it('does not hold it to an active version whose file changed since, and says so', async () => {
    await writeVersion(models, 'adder', 1, addConstModel(7))
    const r = validate(join(models, 'adder', '2'), '--json')
    const report = JSON.parse(r.stdout)
    expect(report.active).toBeNull()
    expect(report.warnings.join(' ')).toMatch(
      /records version 1 as active, but its file holds other bytes now/,
    )
    await writeVersion(models, 'adder', 1, addConstModel(1))
  })
})
