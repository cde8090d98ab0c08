import type { Logger } from '../../log.js'
import { InferenceStats } from '../../metrics/inference-stats.js'
import type { BatchingDecision } from '../../runtime/batch-check.js'
import type { RunOptions, Runner } from '../../runtime/batcher.js'
import type { Engine } from '../../runtime/engine.js'
import type { Feeds, Fetches } from '../../runtime/feeds.js'
import type { Signature } from '../../runtime/signature.js'
import type { ExecutionChoice } from '../serving/serving-engine.js'

/**
 * A version with live sessions (on the main thread, or in its workers). Requests lease it; once
 * retired it releases its engine when the last lease ends, so a request never runs on a released
 * session; a retained version keeps its workers.
 */
export class LoadedVersion {
  readonly model: string
  readonly version: number
  readonly sha256: string
  readonly engine: Engine
  /** Where its sessions run, and why. */
  readonly execution: ExecutionChoice
  readonly loadedAt = new Date()
  /** Whether requests run together, and why. */
  readonly batching: BatchingDecision
  /** Every served output, one array for all requests that ask for all of them. */
  readonly outputNames: readonly string[]
  /** What it has served since it was loaded (the V2 statistics extension). */
  readonly stats: InferenceStats
  readonly #runner: Runner
  readonly #onReleased: (() => void) | undefined
  #leases = 0
  #retired = false
  #logger: Logger

  constructor(
    model: string,
    version: number,
    sha256: string,
    engine: Engine,
    logger: Logger,
    execution: {
      readonly runner: Runner
      readonly batching: BatchingDecision
      readonly choice?: ExecutionChoice
      readonly stats?: InferenceStats
      readonly onReleased?: () => void
    } = {
      runner: engine,
      batching: { enabled: false, reason: 'not configured' },
    },
  ) {
    this.model = model
    this.version = version
    this.sha256 = sha256
    this.engine = engine
    this.execution = execution.choice ?? {
      mode: engine.mode,
      reason: 'not configured',
      workers: engine.mode === 'workers' ? engine.concurrency : 0,
    }
    this.#logger = logger
    this.#runner = execution.runner
    this.#onReleased = execution.onReleased
    this.batching = execution.batching
    this.outputNames = Object.freeze(engine.signature.outputs.map((o) => o.name))
    this.stats = execution.stats ?? new InferenceStats()
  }

  get signature(): Signature {
    return this.engine.signature
  }

  get leases(): number {
    return this.#leases
  }

  get retired(): boolean {
    return this.#retired
  }

  /** Runs one request, batched with others when the version batches. */
  run(feeds: Feeds, outputs: readonly string[], options?: RunOptions): Promise<Fetches> {
    return this.#runner.run(feeds, outputs, options)
  }

  /** Borrow this version; the caller releases the lease in `finally`. */
  lease(): Lease {
    this.#leases++
    return new Lease(this)
  }

  /** @internal called by Lease */
  unlease(): void {
    this.#leases--
    if (this.#leases === 0 && this.#retired) this.#free()
  }

  /** No new leases will be taken (the caller has unpublished it); free once the last one ends. */
  retire(): void {
    if (this.#retired) return
    this.#retired = true
    if (this.#leases === 0) this.#free()
  }

  #free(): void {
    // release() joins onnxruntime's threads and can take milliseconds: not inside the swap, or
    // inside the request whose lease was the last.
    setImmediate(() => this.#release())
  }

  #release(): void {
    this.engine.release().then(
      () => {
        this.#onReleased?.()
        this.#logger.debug('session_released', { model: this.model, version: this.version })
      },
      (e: unknown) =>
        this.#logger.error('session_release_failed', {
          model: this.model,
          version: this.version,
          error: e,
        }),
    )
  }
}

export class Lease {
  #version: LoadedVersion | undefined

  constructor(version: LoadedVersion) {
    this.#version = version
  }

  get version(): LoadedVersion {
    if (!this.#version) throw new Error('lease already released')
    return this.#version
  }

  /** Idempotent: a second call does nothing. */
  release(): void {
    const v = this.#version
    if (!v) return
    this.#version = undefined
    v.unlease()
  }
}
