import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Tensor } from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildModel } from '../../src/onnx/builder.js'
import { checkBatching } from '../../src/runtime/batch-check.js'
import { ModelSession } from '../../src/runtime/session.js'
import { getJson, postJson } from '../support/api-client.js'
import { addConstModel, writeVersion } from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

/**
 * The batch-safety check run before a version serves: requests run together only if the model
 * gives each row what it gives that row alone. A model that normalizes over the batch has the
 * signature of a batchable model and must still run request by request.
 */

/** y = x - mean of x over the batch: [batch, 4] in and out, but every row depends on the others. */
function batchCenteringModel(): Uint8Array {
  return buildModel({
    opsets: [{ domain: '', version: 18 }],
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', 4] }],
    initializers: [{ name: 'axes', type: 'int64', dims: [1], data: BigInt64Array.of(0n) }],
    nodes: [
      {
        op: 'ReduceMean',
        inputs: ['x', 'axes'],
        outputs: ['mean'],
        attributes: { keepdims: { i: 1 } },
      },
      { op: 'Sub', inputs: ['x', 'mean'], outputs: ['y'] },
    ],
  })
}

const row = (v: number) => ({
  x: new Tensor('float32', Float32Array.of(v, v + 1, v + 2, v + 3), [1, 4]),
})

describe('checkBatching', () => {
  const sessions: ModelSession[] = []
  const open = async (bytes: Uint8Array) => {
    const s = await ModelSession.create(bytes)
    sessions.push(s)
    return s
  }
  afterAll(async () => {
    for (const s of sessions) await s.release()
  })

  it('turns batching on for a model whose rows are independent', async () => {
    expect(await checkBatching(await open(addConstModel(1)), [row(1), row(5)])).toEqual({
      enabled: true,
      reason: 'rows are independent (checked on two inputs run alone and together)',
    })
    // Without two usable smoke inputs, on two synthetic rows of different values.
    expect((await checkBatching(await open(addConstModel(1)), [])).enabled).toBe(true)
  })

  it('turns batching off for a model whose rows change when others run beside them, on smoke inputs or synthetic rows', async () => {
    const centering = await open(batchCenteringModel())
    for (const feeds of [[row(1), row(5)], []]) {
      expect(await checkBatching(centering, feeds)).toEqual({
        enabled: false,
        reason: "output 'y' changes when other rows run beside it",
      })
    }
  })

  it('turns batching off for a signature without a dynamic leading dim', async () => {
    const fixed = buildModel({
      inputs: [{ name: 'x', type: 'float32', shape: [1, 4] }],
      outputs: [{ name: 'y', type: 'float32', shape: [1, 4] }],
      nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
    })
    expect(await checkBatching(await open(fixed), [])).toEqual({
      enabled: false,
      reason: 'not every input and output has a dynamic leading dim',
    })
  })
})

describe('the server runs a model that mixes rows request by request', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      // A batching config that would put concurrent requests together: sixteen rows, or a second.
      const batching = JSON.stringify({ batching: { maxBatchSize: 16, maxDelayMs: 1000 } })
      await writeVersion(dir, 'centering', 1, batchCenteringModel())
      await writeFile(join(dir, 'centering', 'model.json'), batching)
      await writeVersion(dir, 'adder', 1, addConstModel(1))
      await writeFile(join(dir, 'adder', 'model.json'), batching)
    })
  })
  afterAll(() => t?.close())

  it('says why batching is off, and answers every concurrent request as it would alone', async () => {
    expect((await getJson(`${t.url}/models/centering`)).body.batching).toEqual({
      enabled: false,
      reason: "output 'y' changes when other rows run beside it",
    })
    expect((await getJson(`${t.url}/models/adder`)).body.batching).toMatchObject({ enabled: true })
    // Alone, a row minus the mean of a batch of one is zeros. Run together, rows would be
    // centered on the mean of all sixteen.
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        postJson(`${t.url}/models/centering/predict`, { inputs: [[i, i, i, i]] }),
      ),
    )
    for (const a of answers)
      expect(a).toMatchObject({ status: 200, body: { outputs: { y: [[0, 0, 0, 0]] } } })
  })
})
