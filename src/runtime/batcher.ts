import { Tensor } from 'onnxruntime-node'
import type { TensorStorage } from './element-type.js'
import { allocate } from './element-type.js'
import type { Feeds, Fetches } from './feeds.js'
import type { Signature } from './signature.js'
import { RequestCancelledError } from '../errors.js'

/** What a request is run by: a session, or a batcher in front of one. */
export interface RunOptions {
  /**
   * True once the client has gone away: work that has not started is dropped, with
   * RequestCancelledError, when its turn comes. A question asked then, not an event listened to:
   * an AbortController per request cost 4 % of the event loop's time under load.
   */
  readonly clientGone?: (() => boolean) | undefined
  /**
   * The caller will not read the inputs' data again: a worker may take their buffers (moved, not
   * copied). Without it, inputs are copied (warm-up and the batching check run them again).
   */
  readonly handOver?: boolean
}

export interface Runner {
  run(feeds: Feeds, outputs: readonly string[], options?: RunOptions): Promise<Fetches>
}

/** Whatever runs a model: a session on this thread, or a pool of them in worker threads. */
export interface Executor extends Runner {
  /** How many runs it can usefully have in flight at once. */
  readonly concurrency: number
}

export interface BatchingOptions {
  /** Most rows (samples) in one run. */
  readonly maxBatchSize: number
  /** How long a run may wait for more requests once one is queued; 0: never wait for a timer. */
  readonly maxDelayMs: number
}

export interface BatchStats {
  /**
   * Called once per run: its size in rows and requests, how long its oldest request waited, and
   * the waits of all its requests added up (ms).
   */
  readonly onBatch?: (
    rows: number,
    requests: number,
    oldestQueuedMs: number,
    totalQueuedMs: number,
  ) => void
}

interface Pending {
  readonly feeds: Feeds
  readonly outputs: readonly string[]
  /** Row count (the leading dim shared by every input). */
  readonly rows: number
  readonly enqueuedAt: number
  readonly options: RunOptions | undefined
  resolve(fetches: Fetches): void
  reject(error: unknown): void
}

/**
 * Can this signature be batched along the leading dim? Every input and every output must have a
 * dynamic leading dim (requests are concatenated along it); anything else runs request by request.
 */
export function isBatchable(signature: Signature): boolean {
  const leadingDynamic = (shape: readonly (number | string | null)[] | null) =>
    shape !== null && shape.length >= 1 && typeof shape[0] !== 'number'
  return (
    signature.inputs.length > 0 &&
    signature.inputs.every((i) => leadingDynamic(i.shape)) &&
    signature.outputs.every((o) => leadingDynamic(o.shape))
  )
}

/**
 * Dynamic batching, per version. A request that finds the executor idle is scheduled at once: it
 * runs in the same event-loop turn's check phase, together with every request parsed in that turn,
 * so batching adds no latency at low load. While runs are in flight, arrivals queue and go together
 * in the next run, up to `maxBatchSize` rows. Outputs are split back per request as views (no copy).
 * If a batched run fails, its requests are retried one by one, so a bad input fails only itself.
 */
export class Batcher implements Runner {
  readonly #executor: Executor
  readonly #options: BatchingOptions
  readonly #stats: BatchStats
  readonly #queue: Pending[] = []
  #inFlight = 0
  #scheduled = false
  #timer: NodeJS.Timeout | undefined
  /** Set when a model turned out not to keep rows independent: it then runs unbatched. */
  #disabled = false

  constructor(executor: Executor, options: BatchingOptions, stats: BatchStats = {}) {
    this.#executor = executor
    this.#options = options
    this.#stats = stats
  }

  get disabled(): boolean {
    return this.#disabled
  }

  run(feeds: Feeds, outputs: readonly string[], options?: RunOptions): Promise<Fetches> {
    const rows = leadingRows(feeds)
    if (this.#disabled || rows === undefined || rows >= this.#options.maxBatchSize) {
      this.#stats.onBatch?.(rows ?? 1, 1, 0, 0)
      return this.#executor.run(feeds, outputs, options)
    }
    return new Promise<Fetches>((resolve, reject) => {
      this.#queue.push({
        feeds,
        outputs,
        rows,
        enqueuedAt: performance.now(),
        options,
        resolve,
        reject,
      })
      this.#pump()
    })
  }

  #pump(): void {
    if (this.#queue.length === 0 || this.#inFlight >= this.#executor.concurrency || this.#scheduled)
      return
    const queuedRows = this.#queue.reduce((n, p) => n + p.rows, 0)
    if (
      this.#options.maxDelayMs > 0 &&
      queuedRows < this.#options.maxBatchSize &&
      this.#inFlight === 0
    ) {
      // Idle with room left: wait a little for more, unless the batch fills first.
      if (!this.#timer) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined
          this.#schedule()
        }, this.#options.maxDelayMs)
      }
      return
    }
    this.#schedule()
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    // After the poll phase: every request parsed in this turn joins the batch.
    setImmediate(() => {
      this.#scheduled = false
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#dropCancelled()
      while (this.#queue.length > 0 && this.#inFlight < this.#executor.concurrency)
        void this.#runBatch(this.#takeBatch())
    })
  }

  /** The oldest request and every queued one that can share its run, up to maxBatchSize rows. */
  #takeBatch(): Pending[] {
    const first = this.#queue.shift()!
    const batch = [first]
    let rows = first.rows
    for (let i = 0; i < this.#queue.length && rows < this.#options.maxBatchSize; ) {
      const p = this.#queue[i]!
      if (rows + p.rows <= this.#options.maxBatchSize && canShareRun(first, p)) {
        batch.push(p)
        rows += p.rows
        this.#queue.splice(i, 1)
      } else {
        i++
      }
    }
    return batch
  }

  /** Requests whose client went away while they waited: answered now, never run. */
  #dropCancelled(): void {
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const p = this.#queue[i]!
      if (p.options?.clientGone?.()) {
        this.#queue.splice(i, 1)
        p.reject(new RequestCancelledError())
      }
    }
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    this.#inFlight++
    const rows = batch.reduce((n, p) => n + p.rows, 0)
    const now = performance.now()
    this.#stats.onBatch?.(
      rows,
      batch.length,
      now - batch[0]!.enqueuedAt,
      batch.reduce((ms, p) => ms + (now - p.enqueuedAt), 0),
    )
    try {
      if (batch.length === 1) {
        const only = batch[0]!
        await this.#executor
          .run(only.feeds, only.outputs, only.options)
          .then(only.resolve, only.reject)
        return
      }
      let fetched: Fetches
      try {
        // Joined into buffers of their own, read by nobody else: handed over whole.
        fetched = await this.#executor.run(
          concatFeeds(batch.map((p) => p.feeds)),
          batch[0]!.outputs,
          { handOver: true },
        )
      } catch {
        await this.#oneByOne(batch)
        return
      }
      const parts = splitFetches(
        fetched,
        batch.map((p) => p.rows),
      )
      if (!parts) {
        // The outputs do not have one row per input row: this model mixes rows. Never batch it again.
        this.#disabled = true
        await this.#oneByOne(batch)
        return
      }
      batch.forEach((p, i) => p.resolve(parts[i]!))
    } finally {
      this.#inFlight--
      this.#pump()
    }
  }

  async #oneByOne(batch: Pending[]): Promise<void> {
    for (const p of batch)
      await this.#executor.run(p.feeds, p.outputs, p.options).then(p.resolve, p.reject)
  }
}

/** A request's or a run's batch size, for statistics: the leading dim of its first input (1 without one). */
export function rowCount(feeds: Feeds): number {
  for (const name in feeds) return (feeds[name]!.dims[0] as number | undefined) ?? 1
  return 1
}

function leadingRows(feeds: Feeds): number | undefined {
  let rows: number | undefined
  for (const name in feeds) {
    const dims = feeds[name]!.dims
    if (dims.length === 0) return undefined
    if (rows === undefined) rows = dims[0]!
    else if (rows !== dims[0]) return undefined
  }
  return rows === 0 ? undefined : rows
}

/** Same outputs asked for, and the same dims after the leading one for every input. */
function canShareRun(a: Pending, b: Pending): boolean {
  if (
    a.outputs !== b.outputs &&
    (a.outputs.length !== b.outputs.length || a.outputs.some((o, i) => o !== b.outputs[i]))
  )
    return false
  for (const name in a.feeds) {
    const x = a.feeds[name]!.dims
    const y = b.feeds[name]?.dims
    if (!y || x.length !== y.length) return false
    for (let i = 1; i < x.length; i++) if (x[i] !== y[i]) return false
  }
  return true
}

/** Inputs of several requests joined along the leading dim, in order. */
export function concatFeeds(parts: readonly Feeds[]): Feeds {
  const first = parts[0]!
  const out = Object.create(null) as Feeds
  for (const name in first) {
    const t = first[name]!
    const rest = t.dims.slice(1)
    const rowSize = rest.reduce((a, b) => a * b, 1)
    const total = parts.reduce((n, f) => n + (f[name]!.dims[0] as number), 0)
    const data = allocate(t.type as never, total * rowSize)
    let offset = 0
    for (const f of parts) {
      const src = f[name]!.data as TensorStorage
      if (Array.isArray(data))
        for (let i = 0; i < src.length; i++) data[offset + i] = (src as string[])[i]!
      else (data as Exclude<TensorStorage, string[]>).set(src as never, offset)
      offset += src.length
    }
    out[name] = new Tensor(t.type as never, data as never, [total, ...rest])
  }
  return out
}

/** Views of each request's rows; undefined if an output does not have one row per input row. */
function splitFetches(fetched: Fetches, rows: readonly number[]): Fetches[] | undefined {
  const total = rows.reduce((a, b) => a + b, 0)
  const parts: Fetches[] = rows.map(() => Object.create(null) as Fetches)
  for (const name in fetched) {
    const t = fetched[name]!
    if (t.dims.length === 0 || t.dims[0] !== total) return undefined
    const rest = t.dims.slice(1)
    const rowSize = rest.reduce((a, b) => a * b, 1)
    const data = t.data as TensorStorage
    let offset = 0
    rows.forEach((r, i) => {
      const slice = Array.isArray(data)
        ? data.slice(offset, offset + r * rowSize)
        : data.subarray(offset, offset + r * rowSize)
      parts[i]![name] = new Tensor(t.type as never, slice as never, [r, ...rest])
      offset += r * rowSize
    })
  }
  return parts
}
