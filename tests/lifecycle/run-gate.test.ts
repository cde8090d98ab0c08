import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runGate } from '../../src/lifecycle/gate/run-gate.js'
import { sha256Hex } from '../../src/repository/read-version.js'
import { addConstModel } from '../support/models.js'
import { plainGateJob } from './lifecycle-support.js'

describe('runGate: the load stage', () => {
  let dir: string
  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'modelgate-rungate-')))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  const job = (file: string, sha256: string, root: string | undefined = dir) => plainGateJob(file, sha256, root)

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
    expect(report.stages[0]).toMatchObject({ stage: 'load', status: 'failed', reason: 'file_changed' })
  })

  it('refuses a file outside the models directory', async () => {
    const bytes = addConstModel(1)
    const file = join(dir, '1.onnx')
    await writeFile(file, bytes)
    const report = await runGate(job(file, sha256Hex(bytes), join(dir, 'models')))
    expect(report.stages[0]).toMatchObject({ stage: 'load', status: 'failed', reason: 'escapes_models_dir' })
  })
})
