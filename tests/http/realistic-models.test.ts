import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getJson, postJson } from '../support/api-client.js'
import {
  forestWithZipMapModel,
  imageMeanModel,
  statefulStepModel,
  writeVersion,
} from '../support/models.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

/** Models shaped like the ones users export: forests with string labels, images, stateful steps. */
describe('realistic models', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer(async (dir) => {
      await writeVersion(dir, 'forest', 1, forestWithZipMapModel())
      await writeVersion(dir, 'image', 1, imageMeanModel())
      await writeVersion(dir, 'stateful', 1, statefulStepModel())
    })
  })
  afterAll(() => t.close())

  it('serves a tree ensemble with string labels and leaves its ZipMap output out, saying so', async () => {
    const r = await postJson(`${t.url}/models/forest/predict`, {
      inputs: [
        [0.2, 9],
        [0.9, 9],
      ],
    })
    expect(r.status).toBe(200)
    expect(r.body.outputs).toEqual({
      label: ['cat', 'dog'],
      probabilities: [
        [1, 0],
        [0, 1],
      ],
    })
    const meta = await getJson(`${t.url}/models/forest`)
    expect(meta.body.signature.outputs.map((o: { name: string }) => o.name)).toEqual([
      'label',
      'probabilities',
    ])
    expect(meta.body.signature.omittedOutputs).toEqual([
      {
        name: 'output_probability',
        reason:
          'sequence(map(string, tensor(float32))) output: onnxruntime-node returns tensors only',
      },
    ])
    const asked = await postJson(`${t.url}/models/forest/predict`, {
      inputs: [[0.2, 9]],
      outputs: ['output_probability'],
    })
    expect(asked.status).toBe(400)
    expect(asked.body.error.code).toBe('unknown_output')
    expect(asked.body.error.message).toMatch(/not served: sequence/)
  })

  it('takes an image-sized tensor (2 × 3 × 224 × 224) as nested JSON', async () => {
    const image = (v: number) =>
      Array.from({ length: 3 }, () => Array.from({ length: 224 }, () => new Array(224).fill(v)))
    const r = await postJson(`${t.url}/models/image/predict`, {
      inputs: { pixel_values: [image(0.25), image(-1.5)] },
    })
    expect(r.status).toBe(200)
    expect(r.body.outputs.mean).toEqual([0.25, -1.5])
  })

  it('takes the same image as a flat typed tensor', async () => {
    const data = new Array(3 * 224 * 224).fill(0.5)
    const r = await postJson(`${t.url}/models/image/predict`, {
      inputs: { pixel_values: { type: 'float32', shape: [1, 3, 224, 224], data } },
    })
    expect(r.status).toBe(200)
    expect(r.body.outputs.mean).toEqual([0.5])
  })

  it('runs a stateful step with several inputs and an int64 scalar, feeding the state back', async () => {
    let state = [[0, 0, 0, 0]]
    let step: number = 0
    for (const x of [[[1, 2, 3, 4]], [[10, 10, 10, 10]]]) {
      const r = await postJson(`${t.url}/models/stateful/predict`, {
        inputs: { x, 'state.h': state, step },
      })
      expect(r.status, JSON.stringify(r.body)).toBe(200)
      state = r.body.outputs['state.h_next']
      step = r.body.outputs.step_next
    }
    expect(state).toEqual([[11, 12, 13, 14]])
    expect(step).toBe(2)
    // A scalar declared input refuses a vector (beyond the [x] that onnxruntime itself accepts).
    const bad = await postJson(`${t.url}/models/stateful/predict`, {
      inputs: { x: [[1, 2, 3, 4]], 'state.h': state, step: [1, 2] },
    })
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe('invalid_shape')
  })
})
