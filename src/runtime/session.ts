import { InferenceSession, type Tensor } from 'onnxruntime-node'
import { readModelInfo, type ModelInfo } from '../onnx/model-info.js'
import { readSignature, UnservableModelError, type Signature } from './signature.js'

export interface SessionOptions {
  readonly intraOpNumThreads?: number | undefined
  readonly interOpNumThreads?: number | undefined
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all' | undefined
  /**
   * false: intra-op threads sleep between runs instead of spinning. Spinning threads make the next
   * run a little faster and eat a core meanwhile; two sessions timed in turn disturb each other.
   */
  readonly spinning?: boolean | undefined
}

/** onnxruntime's severity scale: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. */
const RUNTIME_LOG_SEVERITY_FATAL = 4

export type Feeds = Record<string, Tensor>
export type Fetches = Record<string, Tensor>

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

/** One onnxruntime session and what it serves. `release()` frees native memory; GC does not. */
export class ModelSession {
  readonly signature: Signature
  readonly info: ModelInfo | undefined
  #session: InferenceSession
  #released = false

  private constructor(session: InferenceSession, signature: Signature, info: ModelInfo | undefined) {
    this.#session = session
    this.signature = signature
    this.info = info
  }

  static async create(bytes: Uint8Array, options: SessionOptions = {}): Promise<ModelSession> {
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
        ...(options.intraOpNumThreads !== undefined && { intraOpNumThreads: options.intraOpNumThreads }),
        ...(options.interOpNumThreads !== undefined && { interOpNumThreads: options.interOpNumThreads }),
        ...(options.graphOptimizationLevel !== undefined && { graphOptimizationLevel: options.graphOptimizationLevel }),
        ...(options.spinning === false && { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
      })
    } catch (e) {
      throw new ModelLoadError('invalid_model', `onnxruntime could not load the model: ${(e as Error).message}`, { cause: e })
    }
    try {
      const signature = readSignature(session.inputMetadata, session.outputMetadata, info)
      return new ModelSession(session, signature, info)
    } catch (e) {
      await session.release()
      if (e instanceof UnservableModelError) throw new ModelLoadError('unsupported_model', e.message, { cause: e })
      throw e
    }
  }

  /** Runs with the named outputs only: asking for a non-tensor output fails the whole run. */
  run(feeds: Feeds, outputs: readonly string[]): Promise<Fetches> {
    return this.#session.run(feeds, outputs)
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
