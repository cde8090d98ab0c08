import { Tensor } from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildModel } from '../../src/onnx/builder.js'
import { RequestCancelledError } from '../../src/errors.js'
import { Batcher, isBatchable, type Executor } from '../../src/runtime/batcher.js'
import type { Feeds, Fetches } from '../../src/runtime/feeds.js'
import { ModelSession } from '../../src/runtime/session.js'
import { addConstModel } from '../support/models.js'

/** A real session that counts its runs and the rows each one carried. */
function counting(session: ModelSession, concurrency = 1): Executor & { runs: number[] } {
  const runs: number[] = []
  return {
    runs,
    concurrency,
    run(feeds: Feeds, outputs: readonly string[]) {
      runs.push(feeds.x!.dims[0] as number)
      return session.run(feeds, outputs)
    },
  }
}

/** Lets `n` rounds of the event loop's check phase (setImmediate) go by. */
async function eventLoopTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

const rows = (...values: number[][]) => ({
  x: new Tensor('float32', Float32Array.from(values.flat()), [values.length, 4]),
})

describe('Batcher', () => {
  let session: ModelSession
  beforeAll(async () => {
    session = await ModelSession.create(addConstModel(10))
  })
  afterAll(() => session.release())

  it('runs a lone request at once, alone', async () => {
    const ex = counting(session)
    const b = new Batcher(ex, { maxBatchSize: 64, maxDelayMs: 0 })
    const out = await b.run(rows([1, 2, 3, 4]), ['y'])
    expect(Array.from(out.y!.data as Float32Array)).toEqual([11, 12, 13, 14])
    expect(ex.runs).toEqual([1])
  })

  it('puts requests of one event-loop turn in one run and splits the outputs back', async () => {
    const ex = counting(session)
    const b = new Batcher(ex, { maxBatchSize: 64, maxDelayMs: 0 })
    const outs = await Promise.all([
      b.run(rows([1, 1, 1, 1]), ['y']),
      b.run(rows([2, 2, 2, 2], [3, 3, 3, 3]), ['y']),
      b.run(rows([4, 4, 4, 4]), ['y']),
    ])
    expect(ex.runs).toEqual([4])
    expect(outs.map((o) => o.y!.dims)).toEqual([
      [1, 4],
      [2, 4],
      [1, 4],
    ])
    expect(Array.from(outs[1]!.y!.data as Float32Array)).toEqual([12, 12, 12, 12, 13, 13, 13, 13])
    expect(Array.from(outs[2]!.y!.data as Float32Array)).toEqual([14, 14, 14, 14])
  })

  it('never puts more than maxBatchSize rows in one run', async () => {
    const ex = counting(session)
    const b = new Batcher(ex, { maxBatchSize: 3, maxDelayMs: 0 })
    await Promise.all(Array.from({ length: 7 }, (_, i) => b.run(rows([i, i, i, i]), ['y'])))
    expect(ex.runs.every((n) => n <= 3)).toBe(true)
    expect(ex.runs.reduce((a, b) => a + b, 0)).toBe(7)
  })

  it('keeps requests asking for different outputs apart', async () => {
    const model = buildModel({
      inputs: [{ name: 'x', type: 'float32', shape: ['n', 4] }],
      outputs: [
        { name: 'a', type: 'float32', shape: ['n', 4] },
        { name: 'b', type: 'float32', shape: ['n', 4] },
      ],
      nodes: [
        { op: 'Identity', inputs: ['x'], outputs: ['a'] },
        { op: 'Neg', inputs: ['x'], outputs: ['b'] },
      ],
    })
    const two = await ModelSession.create(model)
    const ex = counting(two)
    const b = new Batcher(ex, { maxBatchSize: 64, maxDelayMs: 0 })
    const [x, y, z] = await Promise.all([
      b.run(rows([1, 1, 1, 1]), ['a']),
      b.run(rows([2, 2, 2, 2]), ['b']),
      b.run(rows([3, 3, 3, 3]), ['a']),
    ])
    expect(Object.keys(x)).toEqual(['a'])
    expect(Array.from(y.b!.data as Float32Array)).toEqual([-2, -2, -2, -2])
    expect(Array.from(z.a!.data as Float32Array)).toEqual([3, 3, 3, 3])
    expect(ex.runs.sort()).toEqual([1, 2])
    await two.release()
  })

  it('retries a failed batch one by one, so one bad request fails only itself', async () => {
    // An executor that refuses any run containing a NaN.
    const ex: Executor & { runs: number[] } = {
      runs: [],
      concurrency: 1,
      async run(feeds: Feeds, outputs: readonly string[]): Promise<Fetches> {
        this.runs.push(feeds.x!.dims[0] as number)
        if (Array.from(feeds.x!.data as Float32Array).some(Number.isNaN))
          throw new Error('NaN in input')
        return session.run(feeds, outputs)
      },
    }
    const b = new Batcher(ex, { maxBatchSize: 64, maxDelayMs: 0 })
    const results = await Promise.allSettled([
      b.run(rows([1, 1, 1, 1]), ['y']),
      b.run(rows([NaN, 1, 1, 1]), ['y']),
      b.run(rows([2, 2, 2, 2]), ['y']),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(ex.runs).toEqual([3, 1, 1, 1])
  })

  it('waits up to maxDelayMs to fill a batch when idle, and runs a batch that fills at once', async () => {
    // The delay's clock is faked; everything else (setImmediate, onnxruntime) runs for real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const ex = counting(session)
      const b = new Batcher(ex, { maxBatchSize: 3, maxDelayMs: 30 })
      const first = b.run(rows([1, 1, 1, 1]), ['y'])
      await eventLoopTurns(5)
      expect(ex.runs, 'a lone request waits for company').toEqual([])
      const second = b.run(rows([2, 2, 2, 2]), ['y'])
      await eventLoopTurns(5)
      expect(ex.runs).toEqual([])
      vi.advanceTimersByTime(30)
      await Promise.all([first, second])
      expect(ex.runs, 'the two waiting requests, in one run once the delay is over').toEqual([2])
      // Three rows fill a batch: it runs without waiting for the delay (the clock does not move).
      await Promise.all([1, 2, 3].map((i) => b.run(rows([i, i, i, i]), ['y'])))
      expect(ex.runs).toEqual([2, 3])
    } finally {
      vi.useRealTimers()
    }
  })

  it('stops batching a model whose outputs do not keep one row per input row', async () => {
    // y = ReduceSum over the batch: not row-independent.
    const model = buildModel({
      opsets: [{ domain: '', version: 18 }],
      inputs: [{ name: 'x', type: 'float32', shape: ['n', 4] }],
      outputs: [{ name: 'y', type: 'float32', shape: ['m', 4] }],
      initializers: [{ name: 'axes', type: 'int64', dims: [1], data: BigInt64Array.of(0n) }],
      nodes: [
        {
          op: 'ReduceSum',
          inputs: ['x', 'axes'],
          outputs: ['y'],
          attributes: { keepdims: { i: 1 } },
        },
      ],
    })
    const reduce = await ModelSession.create(model)
    const ex = counting(reduce)
    const b = new Batcher(ex, { maxBatchSize: 64, maxDelayMs: 0 })
    const outs = await Promise.all([
      b.run(rows([1, 1, 1, 1], [1, 1, 1, 1]), ['y']),
      b.run(rows([5, 5, 5, 5]), ['y']),
    ])
    expect(Array.from(outs[0]!.y!.data as Float32Array)).toEqual([2, 2, 2, 2])
    expect(Array.from(outs[1]!.y!.data as Float32Array)).toEqual([5, 5, 5, 5])
    expect(b.disabled).toBe(true)
    await reduce.release()
  })

  it('drops a queued request whose client went away when its turn comes: never run, answered request_cancelled', async () => {
    const ex = counting(session)
    const b = new Batcher(ex, { maxBatchSize: 64, maxDelayMs: 0 })
    const first = b.run(rows([1, 1, 1, 1]), ['y']) // runs alone: the executor is idle
    await eventLoopTurns(1)
    let gone = false
    const waiting = b.run(rows([2, 2, 2, 2]), ['y'], { clientGone: () => gone })
    const stays = b.run(rows([3, 3, 3, 3]), ['y'], { clientGone: () => false })
    gone = true
    await first
    await expect(waiting).rejects.toBeInstanceOf(RequestCancelledError)
    expect(Array.from((await stays).y!.data as Float32Array)).toEqual([13, 13, 13, 13])
    expect(ex.runs).toEqual([1, 1])
  })

  it('knows which signatures can be batched', () => {
    const spec = (shape: (number | string | null)[] | null) => ({
      name: 't',
      type: 'float32' as const,
      shape,
    })
    expect(
      isBatchable({ inputs: [spec(['n', 4])], outputs: [spec([null, 2])], omittedOutputs: [] }),
    ).toBe(true)
    expect(
      isBatchable({ inputs: [spec([1, 4])], outputs: [spec(['n', 2])], omittedOutputs: [] }),
    ).toBe(false)
    expect(
      isBatchable({ inputs: [spec(['n', 4])], outputs: [spec([2])], omittedOutputs: [] }),
    ).toBe(false)
    expect(isBatchable({ inputs: [spec(null)], outputs: [spec(['n'])], omittedOutputs: [] })).toBe(
      false,
    )
    expect(isBatchable({ inputs: [], outputs: [spec(['n'])], omittedOutputs: [] })).toBe(false)
  })
})
