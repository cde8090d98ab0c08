import { InferenceFailedError, ServerError } from '../errors.js'
import type { ModelRegistry } from '../lifecycle/model-registry.js'
import type { Logger } from '../log.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import { encodeTensor, type NestedValue, type TypedTensorJson } from '../runtime/tensor-encode.js'
import { decodeFeeds, selectOutputs } from './feeds.js'
import type { PredictRequest } from './predict-request.js'

export interface PredictTarget {
  /** undefined: the default model. */
  readonly model?: string | undefined
  /** undefined: the active version. */
  readonly version?: number | undefined
}

export interface PredictResult {
  readonly model: string
  readonly version: number
  readonly outputs: Record<string, NestedValue | TypedTensorJson>
}

/**
 * Serves predictions without knowing about HTTP: lease a version, decode, run, encode, release.
 * Every request runs start to finish on the version it leased, whatever is swapped meanwhile.
 */
export class Predictor {
  readonly #registry: ModelRegistry
  readonly #metrics: ServerMetrics
  readonly #logger: Logger

  constructor(registry: ModelRegistry, metrics: ServerMetrics, logger: Logger) {
    this.#registry = registry
    this.#metrics = metrics
    this.#logger = logger
  }

  async predict(target: PredictTarget, request: PredictRequest): Promise<PredictResult> {
    const started = performance.now()
    const metrics = this.#metrics
    metrics.inFlight.inc()
    let modelLabel = '_unknown'
    let versionLabel = ''
    let status = 200
    try {
      const model = target.model ?? this.#registry.defaultModel()
      if (this.#registry.get(model)) modelLabel = model // unknown names stay out of label values
      const lease = this.#registry.lease(model, target.version)
      try {
        const version = lease.version
        versionLabel = String(version.version)
        const feeds = decodeFeeds(request.inputs, version.signature)
        const outputNames = selectOutputs(request.outputs, version.signature)
        const runStarted = performance.now()
        let fetched
        try {
          fetched = await version.run(feeds, outputNames)
        } catch (e) {
          throw new InferenceFailedError(`onnxruntime failed to run model '${model}' version ${version.version}: ${(e as Error).message}`, {
            cause: e,
          })
        }
        metrics.inferenceDuration.observe({ model, version: versionLabel }, (performance.now() - runStarted) / 1000)
        const format = request.output_format ?? 'nested'
        // No prototype: an output may be named "__proto__".
        const outputs = Object.create(null) as PredictResult['outputs']
        for (const name of outputNames) {
          const tensor = Object.hasOwn(fetched, name) ? fetched[name] : undefined
          if (!tensor) throw new InferenceFailedError(`onnxruntime returned no output '${name}' for model '${model}' version ${version.version}`)
          outputs[name] = encodeTensor(tensor, format)
        }
        return { model, version: version.version, outputs }
      } finally {
        lease.release()
      }
    } catch (e) {
      status = e instanceof ServerError ? e.status : 500
      if (status >= 500) this.#logger.warn('predict_failed', { model: modelLabel, version: versionLabel, error: e })
      throw e
    } finally {
      metrics.inFlight.dec()
      metrics.requests.inc({ model: modelLabel, version: versionLabel, status: String(status) })
      if (status === 200) metrics.requestDuration.observe({ model: modelLabel, version: versionLabel }, (performance.now() - started) / 1000)
    }
  }
}
