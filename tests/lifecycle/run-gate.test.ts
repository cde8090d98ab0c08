import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runGate } from '../../src/lifecycle/gate/run-gate.js'
import { warmUp } from '../../src/lifecycle/gate/warmup.js'
import { sha256Hex } from '../../src/repository/read-version.js'
import { ModelSession } from '../../src/runtime/session.js'
import { addConstModel, identityModel } from '../support/models.js'
import { plainGateJob } from './lifecycle-support.js'

describe('runGate: the load stage', () => {
  let dir: string
  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'modelgate-rungate-')))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  const job = (file: string, sha256: string, root: string | undefined = dir) =>
    plainGateJob(file, sha256, root)

  it('loads the bytes the server read', async () => {
    const bytes = addConstModel(1)
    const file = join(dir, '1.onnx')
    await writeFile(file, bytes)
    const report = await runGate(job(file, sha256Hex(bytes)))
    expect(report.passed).toBe(true)
  })

  it('calls bytes that changed after the server read them file_changed, not a verdict on the model', async () => {
    const file = join(dir, '1.onnx')
    await writeFile(file, addConstModel(2))
    const report = await runGate(job(file, sha256Hex(addConstModel(1))))
    expect(report.passed).toBe(false)
    expect(report.stages[0]).toMatchObject({
      stage: 'load',
      status: 'failed',
      reason: 'file_changed',
    })
    // Named relative to the models directory: API answers never show the server's paths.
    expect(report.stages[0]!.message).toMatch(/^1\.onnx has sha256 [0-9a-f]{64}, expected /)
  })

  it('refuses a file outside the models directory', async () => {
    const bytes = addConstModel(1)
    const file = join(dir, '1.onnx')
    await writeFile(file, bytes)
    const report = await runGate(job(file, sha256Hex(bytes), join(dir, 'models')))
    expect(report.stages[0]).toMatchObject({
      stage: 'load',
      status: 'failed',
      reason: 'escapes_models_dir',
    })
  })
})

describe('runGate: an input too large to synthesize', () => {
  let dir: string
  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'modelgate-rungate-')))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  // A fixed dim of 1e12: 4 TB of float32 zeros, which the gate used to try to allocate.
  const huge = identityModel('float32', [1e12])

  it('rejects a version without smoke cases as input_too_large, allocating nothing', async () => {
    const file = join(dir, '1.onnx')
    await writeFile(file, huge)
    const report = await runGate(plainGateJob(file, sha256Hex(huge), dir))
    expect(report.passed).toBe(false)
    expect(report.stages.at(-1)).toMatchObject({
      stage: 'smoke',
      status: 'failed',
      reason: 'input_too_large',
    })
    expect(report.stages.at(-1)!.message).toContain("input 'x' is float32 [1000000000000]")
  })

  it('warms up without it: a warning, not a crash of the server', async () => {
    const session = await ModelSession.create(huge, {})
    try {
      const result = await warmUp(session, { runs: 2, batchSizes: [1, 64], fallbackFeeds: [] })
      expect(result).toMatchObject({ stage: 'warmup', status: 'passed', reason: 'warmup_failed' })
      expect(result.message).toContain('over the limit of 256 MiB')
    } finally {
      await session.release()
    }
  })
})
