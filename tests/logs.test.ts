import { describe, expect, it } from 'vitest'
import { postJson } from './support/api-client.js'
import { spawnServerCli } from './support/cli-server.js'
import { addConstModel, reshapeTo2x2Model, writeVersion } from './support/models.js'
import { serve, tempModelsDir } from './support/servers.js'
import { waitFor } from './support/wait-for.js'

describe('logs', () => {
  it('every line the server prints, on stdout and stderr, is one JSON object, runtime errors included', async () => {
    // The gate's synthesized input (n = 1) fails inside the kernel: onnxruntime logs an error line
    // of its own, in the gate process, and a request with 3 values does the same in the server.
    const models = await tempModelsDir(async (dir) => {
      await writeVersion(dir, 'reshape', 1, reshapeTo2x2Model())
    })
    const cli = await spawnServerCli(['--models', models])
    const ok = await postJson(`${cli.url}/predict`, { inputs: [1, 2, 3, 4] })
    expect(ok.status).toBe(200)
    const failed = await postJson(`${cli.url}/predict`, { inputs: [1, 2, 3] })
    expect(failed.status).toBe(500)
    expect(failed.body.error.code).toBe('inference_failed')
    await waitFor(() => /"event":"predict_failed"/.test(cli.output()), 'the failure in the log')
    cli.child.kill('SIGTERM')
    await cli.closed
    expect(cli.stderr()).toBe('')
    const lines = cli
      .output()
      .split('\n')
      .filter((l) => l !== '')
    for (const line of lines) {
      const record = JSON.parse(line) as Record<string, unknown>
      expect(typeof record.time).toBe('string')
      expect(['debug', 'info', 'warn', 'error']).toContain(record.level)
      expect(typeof record.event).toBe('string')
    }
    // The runtime's message reaches the structured log, with the model and version.
    const failure = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((r) => r.event === 'predict_failed')!
    expect(failure).toMatchObject({ level: 'warn', model: 'reshape', version: '1' })
    expect(String(failure.error)).toMatch(/Reshape/)
  }, 60_000)
})

describe('lifecycle logs', () => {
  it('say every step of a promotion at info, in order, with the version, its bytes and each stage with its duration', async () => {
    const bytes = addConstModel(2)
    const t = await serve(async (dir) => {
      await writeVersion(dir, 'm', 1, addConstModel(1))
    })
    await writeVersion(t.modelsDir, 'm', 2, bytes)
    await waitFor(
      () => t.logs.some((l) => l.event === 'version_promoted' && l.version === 2),
      'v2 to be promoted',
    )
    const steps = t.logs.filter((l) => l.model === 'm' && l.version === 2 && l.level === 'info')
    const events = steps.map((l) => l.event)
    const order = [
      'gate_started',
      'gate_stage',
      'gate_finished',
      'version_warming',
      'version_warmed',
      'version_promoted',
    ]
    const firsts = order.map((e) => events.indexOf(e))
    expect(
      firsts.every((i) => i >= 0),
      events.join(', '),
    ).toBe(true)
    expect([...firsts].sort((a, b) => a - b)).toEqual(firsts)
    expect(steps.find((l) => l.event === 'gate_started')).toMatchObject({ bytes: bytes.length })
    expect(steps.find((l) => l.event === 'version_warming')).toMatchObject({
      bytes: bytes.length,
    })
    const stages = steps.filter((l) => l.event === 'gate_stage')
    expect(stages.map((l) => l.stage)).toEqual(
      expect.arrayContaining(['load', 'signature', 'smoke']),
    )
    for (const s of stages) expect(typeof s.ms).toBe('number')
    expect(steps.find((l) => l.event === 'gate_finished')).toMatchObject({ passed: true })
    expect(typeof steps.find((l) => l.event === 'version_promoted')!.swapMs).toBe('number')
  })
})
