import { InferenceSession } from 'onnxruntime-node'
import { readModelInfo, type ModelInfo } from '../onnx/model-info.js'
import { RequestCancelledError } from '../errors.js'
import type { RunOptions } from './batcher.js'
import type { Engine } from './engine.js'
import type { Feeds, Fetches } from './feeds.js'
import { readSignature, UnservableModelError, type Signature } from './signature.js'

export interface SessionOptions {
  readonly intraOpNumThreads?: number | undefined
  readonly interOpNumThreads?: number | undefined
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all' | undefined
  /**
   * true: onnxruntime's intra-op threads spin between runs instead of sleeping. Off unless asked:
   * a spinning thread makes the next run a little faster and eats a core meanwhile, the core the
   * event loop needs to parse the next requests (measured: 5.3-6.3k req/s spinning, 9.5-10.4k not,
   * for the same small MLP at 64 connections on 2 cores); and two sessions timed in turn disturb
   * each other.
   */
  readonly spinning?: boolean | undefined
}

/** onnxruntime's severity scale: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. */
const RUNTIME_LOG_SEVERITY_FATAL = 4

/** Why a model could not become a session: bytes onnxruntime refuses, or I/O it cannot carry. */
export class ModelLoadError extends Error {
  constructor(
    readonly reason: 'invalid_model' | 'unsupported_model',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/**
 * One onnxruntime session and what it serves, on the calling thread (a run holds it: onnxruntime-node
 * runs synchronously). `release()` frees native memory; GC does not.
 */
export class ModelSession implements Engine {
  readonly mode = 'main'
  readonly concurrency = 1
  readonly signature: Signature
  readonly info: ModelInfo | undefined
  #session: InferenceSession
  #released = false
  /** Served outputs named like a member of Object.prototype ('constructor', 'toString'): see run(). */
  readonly #prototypeNamed: readonly string[]

  private constructor(
    session: InferenceSession,
    signature: Signature,
    info: ModelInfo | undefined,
  ) {
    this.#session = session
    this.signature = signature
    this.info = info
    this.#prototypeNamed = signature.outputs
      .map((o) => o.name)
      .filter((name) => name in Object.prototype)
  }

  static async create(bytes: Uint8Array, options: SessionOptions = {}): Promise<ModelSession> {
    // onnxruntime-node refuses shared memory: a worker's session is built from a copy of its own,
    // dropped once the session holds the weights.
    if (bytes.buffer instanceof SharedArrayBuffer) bytes = new Uint8Array(bytes)
    let info: ModelInfo | undefined
    try {
      info = readModelInfo(bytes)
    } catch {
      // onnxruntime gives the authoritative message for bytes that are not a model.
      info = undefined
    }
    let session: InferenceSession
    try {
      session = await InferenceSession.create(bytes, {
        // onnxruntime's own log lines are plain text on stderr, and would break a JSON-lines log.
        // Every error it logs is also thrown, and modelgate reports it (with the model and version)
        // in its structured log: only fatal messages, which come before an abort, stay on.
        logSeverityLevel: RUNTIME_LOG_SEVERITY_FATAL,
        ...(options.intraOpNumThreads !== undefined && {
          intraOpNumThreads: options.intraOpNumThreads,
        }),
        ...(options.interOpNumThreads !== undefined && {
          interOpNumThreads: options.interOpNumThreads,
        }),
        ...(options.graphOptimizationLevel !== undefined && {
          graphOptimizationLevel: options.graphOptimizationLevel,
        }),
        ...(options.spinning !== true && {
          extra: {
            session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
          },
        }),
      })
    } catch (e) {
      throw new ModelLoadError(
        'invalid_model',
        `onnxruntime could not load the model: ${(e as Error).message}`,
        { cause: e },
      )
    }
    try {
      const signature = readSignature(session.inputMetadata, session.outputMetadata, info)
      return new ModelSession(session, signature, info)
    } catch (e) {
      await session.release()
      if (e instanceof UnservableModelError)
        throw new ModelLoadError('unsupported_model', e.message, { cause: e })
      throw e
    }
  }

  /** Runs with the named outputs only: asking for a non-tensor output fails the whole run. */
  run(feeds: Feeds, outputs: readonly string[], options?: RunOptions): Promise<Fetches> {
    if (options?.clientGone?.()) return Promise.reject(new RequestCancelledError())
    const unasked =
      this.#prototypeNamed.length === 0
        ? this.#prototypeNamed
        : this.#prototypeNamed.filter((name) => !outputs.includes(name))
    if (unasked.length === 0) return this.#session.run(feeds, outputs)
    return this.#runAlso(feeds, outputs, unasked)
  }

  /**
   * onnxruntime-node's binding looks every output of the model up in the fetches object prototype
   * included: an output named 'toString' that was not asked for is found as Object.prototype's
   * toString, taken for an output tensor the caller allocated, and the run fails ("Tensor.dims
   * must be an array"). Such outputs are fetched all the same, and dropped from the result.
   */
  async #runAlso(
    feeds: Feeds,
    outputs: readonly string[],
    unasked: readonly string[],
  ): Promise<Fetches> {
    const all = await this.#session.run(feeds, [...outputs, ...unasked])
    const fetched = Object.create(null) as Fetches
    for (const name of outputs) if (Object.hasOwn(all, name)) fetched[name] = all[name]!
    return fetched
  }

  get released(): boolean {
    return this.#released
  }

  async release(): Promise<void> {
    if (this.#released) return
    this.#released = true
    await this.#session.release()
  }
}
