import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Tensor } from 'onnxruntime-node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  InferenceTimeoutError,
  RequestCancelledError,
  WorkerCrashedError,
  WorkerUnavailableError,
} from '../../src/errors.js'
import type { Feeds, Fetches } from '../../src/runtime/feeds.js'
import { ModelLoadError, ModelSession } from '../../src/runtime/session.js'
import {
  WorkerPool,
  type WorkerLoss,
  type WorkerPoolOptions,
} from '../../src/runtime/worker-pool.js'
import {
  addConstModel,
  classifierModel,
  identityModel,
  loopCounterModel,
} from '../support/models.js'
import { makeTempDir } from '../support/test-server.js'
import { liveThreads, threadIds, threadsSince } from '../support/threads.js'
import { waitFor } from '../support/wait-for.js'

/**
 * WorkerPool against real worker threads and real onnxruntime sessions. The pool runs its worker
 * from dist/ (a thread needs JavaScript): `npm run build` first. Faults are injected by a worker
 * entry of this test's own, which imports the real worker and, before it sees a run, acts on
 * magic values of the first element of `x`.
 */

/** x[0] = CRASH: the worker thread exits with code 1 mid-run. */
const CRASH = 666
/** x[0] = THROW: the worker throws an uncaught error mid-run. */
const THROW = 777
/**
 * x[0] >= BLOCK: the worker blocks in a synchronous child process until the file `release-<x[0]>`
 * appears in the entry's folder. Like a native onnxruntime run, terminate() cannot interrupt it.
 */
const BLOCK = 1000

let dir: string
let faultyEntry: URL

beforeAll(async () => {
  dir = await makeTempDir('modelgate-worker-pool-')
  const worker = pathToFileURL(
    join(import.meta.dirname, '..', '..', 'dist', 'runtime', 'inference-worker.js'),
  ).href
  const source = `
import { spawnSync } from 'node:child_process'
import { parentPort } from 'node:worker_threads'
// Registered before the real worker's listener: sees every run first.
parentPort.on('message', (m) => {
  if (m.type !== 'run' || !m.feeds.x) return
  const first = m.feeds.x.data[0]
  if (first === ${CRASH}) process.exit(1)
  if (first === ${THROW}) throw new Error('injected fault')
  if (first >= ${BLOCK}) {
    const file = ${JSON.stringify(dir)} + '/release-' + first
    spawnSync('sh', ['-c', 'until [ -e "$0" ]; do sleep 0.01; done', file], { timeout: 60_000 })
  }
})
await import(${JSON.stringify(worker)})
`
  await writeFile(join(dir, 'faulty-worker.mjs'), source)
  faultyEntry = pathToFileURL(join(dir, 'faulty-worker.mjs'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const pools: WorkerPool[] = []
afterEach(async () => {
  for (const p of pools.splice(0)) await p.release()
})

/** The model bytes in shared memory, as the server hands them to a pool. */
function shared(bytes: Uint8Array): Uint8Array {
  const view = new Uint8Array(new SharedArrayBuffer(bytes.length))
  view.set(bytes)
  return view
}

/** A pool, and what it told of its workers: losses, and each change of the stuck count. */
interface Watched {
  readonly p: WorkerPool
  readonly lost: { reason: WorkerLoss; error: unknown }[]
  readonly stuck: number[]
}

async function pool(bytes: Uint8Array, o: Partial<WorkerPoolOptions> = {}): Promise<Watched> {
  const lost: Watched['lost'] = []
  const stuck: number[] = []
  const p = await WorkerPool.create(shared(bytes), {
    workers: 2,
    timeoutMs: 30_000,
    sessionOptions: { intraOpNumThreads: 1 },
    onWorkerLost: (reason, error) => lost.push({ reason, error }),
    onStuckChange: (n) => stuck.push(n),
    ...o,
  })
  pools.push(p)
  return { p, lost, stuck }
}

const row = (first: number, batch = 1): Feeds => ({
  x: new Tensor(
    'float32',
    Float32Array.from({ length: 4 * batch }, (_, i) => (i === 0 ? first : i)),
    [batch, 4],
  ),
})

/** Fetches as plain data, to compare results across threads and sessions. */
function plain(
  fetches: Fetches,
): Record<string, { type: string; dims: readonly number[]; data: unknown[] }> {
  const out: Record<string, { type: string; dims: readonly number[]; data: unknown[] }> = {}
  for (const [name, t] of Object.entries(fetches))
    out[name] = { type: t.type, dims: t.dims, data: Array.from(t.data as ArrayLike<unknown>) }
  return out
}

/** Lets a blocked run (x[0] = value) return. */
function unblock(value: number): Promise<void> {
  return writeFile(join(dir, `release-${value}`), '')
}

describe('WorkerPool', () => {
  it('answers concurrent runs exactly as a session on this thread does', async () => {
    const bytes = classifierModel([0.5, -1, 2])
    const { p, lost } = await pool(bytes)
    const session = await ModelSession.create(bytes)
    try {
      const feeds = Array.from({ length: 24 }, (_, i) => {
        const batch = 1 + (i % 3)
        return {
          x: new Tensor(
            'float32',
            Float32Array.from({ length: 3 * batch }, (_, j) => Math.sin(i * 7 + j) * 3),
            [batch, 3],
          ),
        }
      })
      const results = await Promise.all(feeds.map((f) => p.run(f, ['scores', 'label'])))
      for (const [i, f] of feeds.entries())
        expect(plain(results[i]!), `run ${i}`).toEqual(
          plain(await session.run(f, ['scores', 'label'])),
        )
      expect(p.mode).toBe('workers')
      expect(p.concurrency).toBe(2)
      expect(p.signature.inputs.map((s) => s.name)).toEqual(['x'])
      expect(lost).toEqual([])
    } finally {
      await session.release()
    }
  })

  it('copies the inputs: the same feeds run twice, and the caller keeps its buffers', async () => {
    const { p } = await pool(addConstModel(1))
    const feeds = row(5)
    const buffer = feeds.x!.data as Float32Array
    const first = await p.run(feeds, ['y'])
    const second = await p.run(feeds, ['y'])
    expect(Array.from(first.y!.data as Float32Array)).toEqual([6, 2, 3, 4])
    expect(plain(second)).toEqual(plain(first))
    expect(buffer.byteLength).toBe(16) // not detached by a transfer
    expect(Array.from(buffer)).toEqual([5, 1, 2, 3])
  })

  for (const handOver of [false, true]) {
    it(`takes views into a larger buffer (plain, Node Buffer, shared) and moves nothing beside them (handOver: ${handOver})`, async () => {
      const { p } = await pool(identityModel('uint8', ['n']))
      const whole = new ArrayBuffer(64)
      new Uint8Array(whole).fill(9)
      const view = new Uint8Array(whole, 8, 4).fill(1)
      const body = Buffer.allocUnsafeSlow(64).fill(7) // a buffer of its own, as a large request body is
      const fromBody = body.subarray(16, 20)
      const sharedView = new Uint8Array(new SharedArrayBuffer(32), 4, 4).fill(3)
      for (const data of [view, fromBody, sharedView]) {
        const out = await p.run({ x: new Tensor('uint8', data, [4]) }, ['y'], { handOver })
        expect(Array.from(out.y!.data as Uint8Array)).toEqual(Array.from(data))
      }
      expect(whole.byteLength).toBe(64)
      expect(body.buffer.byteLength).toBe(64)
      expect(body.every((b) => b === 7)).toBe(true)
      expect(new Uint8Array(whole).filter((b) => b === 9).length).toBe(60)
      // Twice from the same Buffer view: the first run must not have taken it.
      expect(
        Array.from(
          (await p.run({ x: new Tensor('uint8', fromBody, [4]) }, ['y'], { handOver })).y!
            .data as Uint8Array,
        ),
      ).toEqual([7, 7, 7, 7])
    })
  }

  it('handOver moves a tensor that owns its whole buffer: the worker takes it, nothing is copied', async () => {
    const { p } = await pool(addConstModel(1))
    const feeds = row(5)
    const data = feeds.x!.data as Float32Array
    expect(
      Array.from((await p.run(feeds, ['y'], { handOver: true })).y!.data as Float32Array),
    ).toEqual([6, 2, 3, 4])
    expect(data.byteLength).toBe(0) // detached: it now belongs to the worker
  })

  it('inputs that cannot cross to the worker fail their own run; the worker stays free for the next', async () => {
    const { p } = await pool(addConstModel(1), { workers: 1 })
    const detached = row(1)
    structuredClone(detached.x!.data, {
      transfer: [(detached.x!.data as Float32Array).buffer as ArrayBuffer],
    })
    // A buffer already moved elsewhere cannot be handed over (postMessage throws DataCloneError).
    await expect(p.run(detached, ['y'], { handOver: true })).rejects.toThrow()
    expect(Array.from((await p.run(row(2), ['y'])).y!.data as Float32Array)).toEqual([3, 2, 3, 4])
  })

  it('carries string tensors both ways', async () => {
    const bytes = identityModel('string', ['n'])
    const { p } = await pool(bytes)
    const session = await ModelSession.create(bytes)
    try {
      const feeds = {
        x: new Tensor('string', ['', 'ünïcödé', 'a longer string, with commas', '🙂'], [4]),
      }
      const out = await p.run(feeds, ['y'])
      expect(out.y!.type).toBe('string')
      expect(plain(out)).toEqual(plain(await session.run(feeds, ['y'])))
    } finally {
      await session.release()
    }
  })

  it('a run onnxruntime refuses fails alone, and the worker stays', async () => {
    const { p, lost } = await pool(addConstModel(1))
    const wrongShape = { x: new Tensor('float32', new Float32Array(3), [1, 3]) }
    await expect(p.run(wrongShape, ['y'])).rejects.toThrow(/dimension|shape|Got invalid/i)
    expect(Array.from((await p.run(row(1), ['y'])).y!.data as Float32Array)).toEqual([2, 2, 3, 4])
    expect(p.live).toBe(2)
    expect(lost).toEqual([])
  })

  for (const [fault, value, detail] of [
    ['exits', CRASH, /exited with code 1/],
    ['throws', THROW, /injected fault/],
  ] as const) {
    it(`a worker that ${fault} mid-run fails only that run (worker_crashed), and is replaced`, async () => {
      const { p, lost } = await pool(addConstModel(1), { entry: faultyEntry })
      const others = Array.from({ length: 8 }, (_, i) => p.run(row(i), ['y']))
      const error = await p.run(row(value), ['y']).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WorkerCrashedError)
      expect((error as WorkerCrashedError).status).toBe(500)
      expect((error as Error).message).toMatch(detail)
      const answers = await Promise.all(others)
      expect(answers.map((a) => (a.y!.data as Float32Array)[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
      expect(lost.map((l) => l.reason)).toEqual(['crashed'])
      await waitFor(() => p.live === 2, 'the lost worker to be replaced')
      const later = await Promise.all(
        Array.from({ length: 4 }, (_, i) => p.run(row(10 + i), ['y'])),
      )
      expect(later.map((a) => (a.y!.data as Float32Array)[0])).toEqual([11, 12, 13, 14])
      expect(lost).toHaveLength(1)
    })
  }

  it('a run past the timeout fails with inference_timeout; its stuck worker counts until it ends, then is replaced', async () => {
    const { p, lost, stuck } = await pool(addConstModel(1), {
      entry: faultyEntry,
      workers: 1,
      timeoutMs: 300,
    })
    const blocked = BLOCK + 1
    const running = p.run(row(blocked), ['y'])
    const queued = p.run(row(1), ['y'])
    const error = await running.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InferenceTimeoutError)
    expect((error as InferenceTimeoutError).status).toBe(504)
    // No worker left to run it, and none may start while the stuck one holds its place: it fails now.
    await expect(queued).rejects.toBeInstanceOf(WorkerUnavailableError)
    expect(lost.map((l) => l.reason)).toEqual(['timeout'])
    expect(stuck).toEqual([1])
    expect(p.stuck).toBe(1)
    expect(p.live).toBe(0)
    // Every worker is stuck: new work is refused at once, not queued behind a run that may never end.
    const refused = await p.run(row(2), ['y']).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(WorkerUnavailableError)
    expect((refused as Error).message).toMatch(/stuck/)

    await unblock(blocked)
    await waitFor(() => p.stuck === 0 && p.live === 1, 'the stuck worker to end and be replaced')
    expect(stuck).toEqual([1, 0])
    expect(lost.map((l) => l.reason)).toEqual(['timeout'])
    expect(Array.from((await p.run(row(3), ['y'])).y!.data as Float32Array)).toEqual([4, 2, 3, 4])
  })

  it('an onnxruntime run past the timeout: its worker is ended once the run returns, and this process lives on', async () => {
    const { p, lost, stuck } = await pool(loopCounterModel(), { workers: 1, timeoutMs: 100 })
    const count = (m: bigint) =>
      p.run({ M: new Tensor('int64', BigInt64Array.of(m), []) }, ['count'])
    expect((await count(3n)).count!.data).toEqual(BigInt64Array.of(3n))
    // A million iterations take a second or two: far past the timeout, and they do end.
    await expect(count(1_000_000n)).rejects.toBeInstanceOf(InferenceTimeoutError)
    expect(p.stuck).toBe(1)
    // A thread terminated inside a native run used to abort the whole process when the run returned.
    await waitFor(
      () => p.stuck === 0 && p.live === 1,
      'the timed-out run to return and its worker to be replaced',
    )
    expect(stuck).toEqual([1, 0])
    expect(lost.map((l) => l.reason)).toEqual(['timeout'])
    expect((await count(4n)).count!.data).toEqual(BigInt64Array.of(4n))
  })

  it('release() during a long onnxruntime run waits for the run to return: the worker is never terminated inside it', async () => {
    const p = await WorkerPool.create(shared(loopCounterModel()), {
      workers: 1,
      timeoutMs: 60_000,
      sessionOptions: { intraOpNumThreads: 1 },
    })
    const count = (m: bigint) =>
      p.run({ M: new Tensor('int64', BigInt64Array.of(m), []) }, ['count'])
    expect((await count(3n)).count!.data).toEqual(BigInt64Array.of(3n))
    // Nine million iterations take about 8 s here: release() used to terminate the worker
    // after 5 s, inside the run, and the process aborted when the run returned.
    const long = count(9_000_000n).catch((e: unknown) => e)
    await waitFor(() => p.live === 1, 'the pool to hold its worker')
    await p.release()
    expect(await long).toBeInstanceOf(WorkerUnavailableError)
    expect(p.live).toBe(0)
  })

  it('a worker still stuck when its version is released does not report its end: the released series stay gone', async () => {
    const { p, stuck } = await pool(addConstModel(1), {
      entry: faultyEntry,
      workers: 1,
      timeoutMs: 200,
    })
    const blocked = BLOCK + 5
    await expect(p.run(row(blocked), ['y'])).rejects.toBeInstanceOf(InferenceTimeoutError)
    expect(stuck).toEqual([1])
    const threads = threadIds()
    await p.release()
    await unblock(blocked)
    await waitFor(() => p.stuck === 0, 'the stuck worker to end')
    await waitFor(() => liveThreads(threads).length < threads.size, 'its thread to be gone')
    expect(stuck).toEqual([1])
  })

  it('with one of two workers stuck, the other serves and no third one starts', async () => {
    const { p, lost, stuck } = await pool(addConstModel(1), {
      entry: faultyEntry,
      workers: 2,
      timeoutMs: 300,
    })
    const blocked = BLOCK + 2
    await expect(p.run(row(blocked), ['y'])).rejects.toBeInstanceOf(InferenceTimeoutError)
    expect(p.stuck).toBe(1)
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => p.run(row(i), ['y'])))
    expect(answers.map((a) => (a.y!.data as Float32Array)[0])).toEqual([1, 2, 3, 4, 5, 6])
    expect(p.live).toBe(1) // the stuck worker still holds its place
    await unblock(blocked)
    await waitFor(() => p.stuck === 0 && p.live === 2, 'the stuck worker to end and be replaced')
    expect(stuck).toEqual([1, 0])
    expect(lost.map((l) => l.reason)).toEqual(['timeout'])
  })

  it('queued work whose client went away is dropped when its turn comes (request_cancelled); the run in progress finishes, the work behind it runs', async () => {
    const { p, lost } = await pool(addConstModel(1), { entry: faultyEntry, workers: 1 })
    const blocked = BLOCK + 3
    const running = p.run(row(blocked), ['y'])
    let gone = false
    // Were it run after all, this request would crash the worker: a lost worker would show it.
    const dropped = p.run(row(CRASH), ['y'], { clientGone: () => gone })
    // Queued behind the dropped one: the worker it leaves free takes it, with no later run to ask.
    const behind = p.run(row(2), ['y'])
    gone = true
    await expect(p.run(row(1), ['y'], { clientGone: () => gone })).rejects.toBeInstanceOf(
      RequestCancelledError,
    )

    await unblock(blocked)
    expect(((await running).y!.data as Float32Array)[0]).toBe(blocked + 1)
    await expect(dropped).rejects.toBeInstanceOf(RequestCancelledError)
    expect(((await behind).y!.data as Float32Array)[0]).toBe(3)
    expect(Array.from((await p.run(row(4), ['y'])).y!.data as Float32Array)).toEqual([5, 2, 3, 4])
    expect(lost).toEqual([])
    expect(p.live).toBe(1)
  })

  it('release() fails the work it still had, ends every worker thread, and refuses later runs', async () => {
    const before = threadIds()
    const p = await WorkerPool.create(shared(addConstModel(1)), {
      workers: 3,
      timeoutMs: 30_000,
      sessionOptions: { intraOpNumThreads: 1 },
      entry: faultyEntry,
    })
    const started = threadsSince(before)
    expect(started.length).toBeGreaterThanOrEqual(3)
    const blocked = BLOCK + 4
    // One run in each worker (one of them blocked), three queued behind them.
    const work = [
      p.run(row(blocked), ['y']),
      ...Array.from({ length: 5 }, (_, i) => p.run(row(i), ['y'])),
    ].map((r) => r.catch((e: unknown) => e))
    const released = p.release()
    expect(p.released).toBe(true)
    expect(p.live).toBe(0)
    // Nobody is left to answer them: each one fails now, none waits for its timeout.
    for (const outcome of await Promise.all(work))
      expect(outcome).toBeInstanceOf(WorkerUnavailableError)
    await unblock(blocked)
    await released
    // A worker's thread leaves the process a moment after the worker reports its exit.
    await waitFor(
      () => liveThreads(started).length <= started.length - 3,
      'the threads of the pool to end',
    )
    await expect(p.run(row(1), ['y'])).rejects.toBeInstanceOf(WorkerUnavailableError)
  })

  it('bytes that are not a model: create() rejects with ModelLoadError and leaves no worker behind', async () => {
    const before = threadIds()
    const notAModel = shared(new TextEncoder().encode('this is not an ONNX model'))
    const error = await WorkerPool.create(notAModel, {
      workers: 2,
      timeoutMs: 30_000,
      sessionOptions: {},
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ModelLoadError)
    expect((error as ModelLoadError).reason).toBe('invalid_model')
    await waitFor(() => threadsSince(before).length <= 1, 'the workers that failed to load to end')
  })
})
