import { Worker } from 'node:worker_threads'
import {
  InferenceTimeoutError,
  RequestCancelledError,
  WorkerCrashedError,
  WorkerUnavailableError,
} from '../errors.js'
import type { RunOptions } from './batcher.js'
import type { Engine } from './engine.js'
import type { Feeds, Fetches } from './feeds.js'
import type { FromWorker, ToWorker, WarmPlan, WorkerStart } from './inference-worker.js'
import { ModelLoadError, type SessionOptions } from './session.js'
import type { Signature } from './signature.js'
import type { WarmUpOutcome } from './warm-up.js'
import { pack, unpack } from './wire-tensor.js'

/** Tests run the sources, the server runs dist/: a worker thread needs JavaScript either way. */
const ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/runtime/inference-worker.js', import.meta.url)
  : new URL('./inference-worker.js', import.meta.url)

/** Why a worker was lost: it died, or a run outlived the timeout and the worker was ended for it. */
export type WorkerLoss = 'crashed' | 'timeout'

export interface WorkerPoolOptions {
  readonly workers: number
  /** A run still going after this long fails with InferenceTimeoutError and its worker is ended. */
  readonly timeoutMs: number
  readonly sessionOptions: SessionOptions
  /** Told of every lost worker, with the error of its thread when it died. */
  readonly onWorkerLost?: (reason: WorkerLoss, error: unknown) => void
  /** Told how many ended workers are still inside a run that cannot be interrupted. */
  readonly onStuckChange?: (stuck: number) => void
  /** The worker's script; tests pass a wrapper that can crash on demand. */
  readonly entry?: URL
}

interface Job {
  readonly feeds: Feeds
  readonly outputs: readonly string[]
  readonly handOver: boolean
  readonly resolve: (fetches: Fetches) => void
  readonly reject: (error: unknown) => void
  readonly clientGone: (() => boolean) | undefined
}

interface Slot {
  readonly worker: Worker
  ready: boolean
  job: Job | undefined
  jobId: number
  timer: NodeJS.Timeout | undefined
  /** Waiting for the worker's warm-up report. */
  onWarmed: ((result: WarmUpOutcome | undefined) => void) | undefined
}

/** How long a replacement waits after a replacement failed to start: 1 s, doubling up to 30 s. */
const RESTART_DELAY_MS = { first: 1000, max: 30_000 }

/**
 * A version's sessions in worker threads, each created from the same shared copy of the model
 * bytes. One queue feeds whichever worker is idle. A worker that dies fails only the run it had,
 * and is replaced; a run past the timeout fails with 504 and its worker is ended the same way.
 * onnxruntime cannot interrupt a run, so an ended worker may go on computing until its run returns:
 * such workers are counted as stuck, and no more are replaced than the pool's size.
 */
export class WorkerPool implements Engine {
  readonly mode = 'workers'
  readonly concurrency: number
  readonly signature: Signature
  readonly #bytes: Uint8Array
  readonly #options: WorkerPoolOptions
  readonly #slots: Slot[] = []
  readonly #queue: Job[] = []
  #nextJobId = 1
  #starting = 0
  #stuck = 0
  #restartDelayMs = RESTART_DELAY_MS.first
  #released = false
  /** How the workers were warmed: a replacement is warmed the same way before it takes requests. */
  #warmPlan: WarmPlan | undefined

  private constructor(
    bytes: Uint8Array,
    options: WorkerPoolOptions,
    slots: Slot[],
    first: { signature: Signature },
  ) {
    this.#bytes = bytes
    this.#options = options
    this.concurrency = options.workers
    this.signature = first.signature
    for (const slot of slots) this.#adopt(slot)
  }

  /**
   * Starts the workers and waits until each has its session. `bytes` should be a view of a
   * SharedArrayBuffer: every worker reads the same copy. Fails like ModelSession.create if the
   * bytes do not load. One worker at a time: sessions created side by side would take every core
   * from the versions that serve meanwhile.
   */
  static async create(bytes: Uint8Array, options: WorkerPoolOptions): Promise<WorkerPool> {
    const started: Started[] = []
    try {
      for (let i = 0; i < options.workers; i++) started.push(await startWorker(bytes, options))
    } catch (e) {
      await Promise.all(started.map((s) => s.slot.worker.terminate()))
      throw e
    }
    return new WorkerPool(
      bytes,
      options,
      started.map((s) => s.slot),
      started[0]!,
    )
  }

  /**
   * Warms every worker's session, one worker after the other (for the same reason as create), each
   * in its own thread with inputs it makes itself. The report is the first worker's.
   */
  async warmEach(plan: WarmPlan): Promise<WarmUpOutcome | undefined> {
    this.#warmPlan = plan
    let first: WarmUpOutcome | undefined
    for (const slot of [...this.#slots]) {
      const result = await new Promise<WarmUpOutcome | undefined>((resolve) => {
        slot.onWarmed = resolve
        slot.worker.postMessage({ type: 'warm', plan } satisfies ToWorker)
      })
      first ??= result
    }
    return first
  }

  get released(): boolean {
    return this.#released
  }

  /** Workers ended for a timeout that are still inside their run. */
  get stuck(): number {
    return this.#stuck
  }

  /** Workers with a session, ready or busy. */
  get live(): number {
    return this.#slots.length
  }

  run(feeds: Feeds, outputs: readonly string[], options?: RunOptions): Promise<Fetches> {
    if (options?.clientGone?.()) return Promise.reject(new RequestCancelledError())
    if (this.#released)
      return Promise.reject(new WorkerUnavailableError('this version was released'))
    if (this.#slots.length === 0 && this.#starting === 0) return Promise.reject(this.#unavailable())
    return new Promise<Fetches>((resolve, reject) => {
      this.#queue.push({
        feeds,
        outputs,
        handOver: options?.handOver === true,
        resolve,
        reject,
        clientGone: options?.clientGone,
      })
      this.#dispatch()
    })
  }

  async release(): Promise<void> {
    if (this.#released) return
    this.#released = true
    for (const job of this.#queue.splice(0))
      this.#settle(job, undefined, new WorkerUnavailableError('this version was released'))
    const slots = this.#slots.splice(0)
    // A worker releases its session before a run it has started returns its result (onnxruntime-node
    // defers the run to setImmediate): that result never comes, so the run fails here, not never.
    for (const slot of slots) {
      clearTimeout(slot.timer)
      if (slot.job)
        this.#settle(slot.job, undefined, new WorkerUnavailableError('this version was released'))
      slot.job = undefined
      slot.onWarmed?.(undefined) // released while warming (the server is closing)
      slot.onWarmed = undefined
    }
    await Promise.all(slots.map((slot) => endWorker(slot.worker)))
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      // A job that cannot be sent fails at once and leaves the slot free: it takes the next.
      while (slot.ready && !slot.job) {
        const job = this.#nextJob()
        if (!job) return
        this.#start(slot, job)
      }
    }
  }

  /**
   * The oldest queued job whose client is still there. Those whose client went away while they
   * waited are answered now (request_cancelled), never run, and do not use up the free worker's
   * turn: the job behind them would otherwise wait, that worker idle, for the next run to arrive.
   */
  #nextJob(): Job | undefined {
    for (let job = this.#queue.shift(); job; job = this.#queue.shift()) {
      if (!job.clientGone?.()) return job
      this.#settle(job, undefined, new RequestCancelledError())
    }
    return undefined
  }

  #start(slot: Slot, job: Job): void {
    const id = this.#nextJobId++
    try {
      const packed = pack(job.feeds, job.handOver)
      const message: ToWorker = { type: 'run', id, feeds: packed.tensors, outputs: job.outputs }
      slot.worker.postMessage(message, packed.transfer)
    } catch (e) {
      // Inputs that cannot cross (a buffer already moved elsewhere): this run fails, and the
      // worker, which never saw it, stays free. A slot left holding it would never run again.
      this.#settle(job, undefined, e)
      return
    }
    slot.job = job
    slot.jobId = id
    slot.timer = setTimeout(() => this.#timedOut(slot), this.#options.timeoutMs)
  }

  #adopt(slot: Slot): void {
    this.#slots.push(slot)
    slot.worker.on('message', (m: FromWorker) => this.#onMessage(slot, m))
    slot.worker.on('error', (e) => this.#lose(slot, 'crashed', e))
    slot.worker.on('exit', (code) =>
      this.#lose(slot, 'crashed', new Error(`the worker thread exited with code ${code}`)),
    )
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    if (m.type === 'warmed') {
      slot.onWarmed?.(m.result)
      slot.onWarmed = undefined
      return
    }
    if (m.type !== 'result' && m.type !== 'failed') return
    const job = slot.job
    if (!job || m.id !== slot.jobId) return
    clearTimeout(slot.timer)
    slot.job = undefined
    if (m.type === 'result') this.#settle(job, unpack(m.fetches) as Fetches)
    else this.#settle(job, undefined, new Error(m.message))
    this.#dispatch()
  }

  #settle(job: Job, fetches: Fetches | undefined, error?: unknown): void {
    if (error !== undefined) job.reject(error)
    else job.resolve(fetches!)
  }

  #timedOut(slot: Slot): void {
    const seconds = this.#options.timeoutMs / 1000
    this.#stuck++
    this.#options.onStuckChange?.(this.#stuck)
    slot.worker.once('exit', () => {
      this.#stuck--
      // A released version's series are gone: not made again for a worker that ends afterwards.
      if (!this.#released) this.#options.onStuckChange?.(this.#stuck)
      this.#replenish()
    })
    this.#remove(
      slot,
      'timeout',
      new InferenceTimeoutError(
        `the run did not finish within ${seconds} s (execution.timeoutSeconds): a new worker takes its place, the old one ends when its run returns`,
      ),
    )
    // onnxruntime cannot interrupt a run, and a thread terminated inside one aborts the whole
    // process when the run returns (onnxruntime-node throws from native code into a dying isolate).
    // The worker reports the end of its run with a message: it is ended then, idle. (No ping to
    // hurry it: the worker's thread answers one while onnxruntime still runs, and a thread ended
    // then aborts the process just the same.)
    slot.worker.once('message', () => void slot.worker.terminate())
  }

  #lose(slot: Slot, reason: 'crashed', error: unknown): void {
    if (!this.#slots.includes(slot)) return // already removed (timed out, or released)
    const detail = error instanceof Error ? error.message : String(error)
    this.#remove(
      slot,
      reason,
      new WorkerCrashedError(
        `the inference worker running this request died (${detail}); it has been replaced, retrying is safe`,
      ),
    )
    void slot.worker.terminate()
  }

  /** Takes a lost worker out of the pool: its request fails with `error`, a replacement starts. */
  #remove(slot: Slot, reason: 'crashed' | 'timeout', error: Error): void {
    this.#slots.splice(this.#slots.indexOf(slot), 1)
    clearTimeout(slot.timer)
    slot.onWarmed?.(undefined) // a worker lost while warming: its replacement serves cold
    slot.onWarmed = undefined
    const job = slot.job
    slot.job = undefined
    if (job) this.#settle(job, undefined, error)
    this.#options.onWorkerLost?.(reason, error)
    this.#replenish()
  }

  /** Starts replacements up to the pool's size, counting stuck workers against it. */
  #replenish(): void {
    if (this.#released) return
    while (this.#slots.length + this.#starting + this.#stuck < this.concurrency) {
      this.#starting++
      startWorker(this.#bytes, this.#options).then(
        ({ slot }) => {
          this.#starting--
          this.#restartDelayMs = RESTART_DELAY_MS.first
          if (this.#released) {
            void endWorker(slot.worker)
            return
          }
          this.#adopt(slot)
          if (this.#warmPlan) {
            slot.ready = false
            slot.onWarmed = () => {
              slot.ready = true
              this.#dispatch()
            }
            slot.worker.postMessage({ type: 'warm', plan: this.#warmPlan } satisfies ToWorker)
          }
          this.#dispatch()
        },
        (e: unknown) => {
          this.#starting--
          this.#options.onWorkerLost?.('crashed', e)
          this.#failQueueIfNoWorker()
          const delay = this.#restartDelayMs
          this.#restartDelayMs = Math.min(delay * 2, RESTART_DELAY_MS.max)
          setTimeout(() => this.#replenish(), delay).unref()
        },
      )
    }
    this.#failQueueIfNoWorker()
  }

  /** With no worker to run it and none starting, queued work fails now rather than waiting. */
  #failQueueIfNoWorker(): void {
    if (this.#slots.length > 0 || this.#starting > 0) return
    for (const job of this.#queue.splice(0)) this.#settle(job, undefined, this.#unavailable())
  }

  #unavailable(): WorkerUnavailableError {
    return new WorkerUnavailableError(
      this.#stuck > 0
        ? `every inference worker of this version is stuck in a run that outlived its timeout (${this.#stuck}); retry later`
        : 'no inference worker of this version could be started; retry later',
    )
  }
}

interface Started {
  readonly slot: Slot
  readonly signature: Signature
}

function startWorker(bytes: Uint8Array, options: WorkerPoolOptions): Promise<Started> {
  const start: WorkerStart = { bytes, options: options.sessionOptions }
  const worker = new Worker(options.entry ?? ENTRY, { workerData: start })
  // Like the gate process, a worker never keeps the server alive: releasing the version ends it.
  worker.unref()
  return new Promise<Started>((resolve, reject) => {
    const fail = (e: Error) => {
      cleanup()
      void worker.terminate()
      reject(e)
    }
    const onMessage = (m: FromWorker) => {
      cleanup()
      if (m.type === 'ready') {
        resolve({
          slot: {
            worker,
            ready: true,
            job: undefined,
            jobId: 0,
            timer: undefined,
            onWarmed: undefined,
          },
          signature: m.signature,
        })
      } else if (m.type === 'load_failed') fail(new ModelLoadError(m.reason, m.message))
      else fail(new Error(`unexpected message from a starting worker: ${m.type}`))
    }
    const onError = (e: Error) =>
      fail(
        new ModelLoadError(
          'invalid_model',
          `the inference worker died while creating its session: ${e.message}`,
        ),
      )
    const onExit = (code: number) =>
      fail(
        new ModelLoadError(
          'invalid_model',
          `the inference worker exited with code ${code} while creating its session`,
        ),
      )
    const cleanup = () => {
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
    }
    worker.once('message', onMessage)
    worker.once('error', onError)
    worker.once('exit', onExit)
  })
}

/**
 * Asks a worker to release its session and waits for its thread to end. Never forced: a worker
 * still inside a run would abort the whole process if terminated (see #timedOut); it handles the
 * release once its run returns.
 */
async function endWorker(worker: Worker): Promise<void> {
  worker.removeAllListeners('error')
  worker.removeAllListeners('exit')
  worker.on('error', () => {}) // a worker dying while it releases has nothing left to fail
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  worker.postMessage({ type: 'release' } satisfies ToWorker)
  await exited
}
