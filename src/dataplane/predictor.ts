import { InferenceFailedError, ServerError } from '../errors.js'
import type { LoadedVersion } from '../lifecycle/loaded-version.js'
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
interface VersionMetrics {
  readonly ok: { inc(): void }
  readonly duration: { observe(value: number): void }
}

export class Predictor {
  readonly #registry: ModelRegistry
  readonly #metrics: ServerMetrics
  readonly #logger: Logger
  /** Each version's labelled metrics, looked up once instead of hashing labels per request. */
  readonly #versionMetrics = new WeakMap<LoadedVersion, VersionMetrics>()

  constructor(registry: ModelRegistry, metrics: ServerMetrics, logger: Logger) {
    this.#registry = registry
    this.#metrics = metrics
    this.#logger = logger
  }

  async predict(target: PredictTarget, request: PredictRequest): Promise<PredictResult> {
    const started = performance.now()
    const metrics = this.#metrics
    metrics.inFlightCount++
    let model = '_unknown'
    let version: LoadedVersion | undefined
    try {
      const name = target.model ?? this.#registry.defaultModel()
      if (this.#registry.get(name)) model = name // unknown names stay out of label values
      const lease = this.#registry.lease(name, target.version)
      version = lease.version
      try {
        const result = await this.#run(version, request)
        this.#metricsOf(version).ok.inc()
        this.#metricsOf(version).duration.observe((performance.now() - started) / 1000)
        return result
      } finally {
        lease.release()
      }
    } catch (e) {
      const status = e instanceof ServerError ? e.status : 500
      const versionLabel = version ? String(version.version) : ''
      if (status >= 500) this.#logger.warn('predict_failed', { model, version: versionLabel, error: e })
      metrics.requests.inc({ model, version: versionLabel, status: String(status) })
      throw e
    } finally {
      metrics.inFlightCount--
    }
  }

  async #run(version: LoadedVersion, request: PredictRequest): Promise<PredictResult> {
    const feeds = decodeFeeds(request.inputs, version.signature)
    const outputNames = selectOutputs(request.outputs, version.signature, version.outputNames)
    let fetched
    try {
      fetched = await version.run(feeds, outputNames)
    } catch (e) {
      throw new InferenceFailedError(`onnxruntime failed to run model '${version.model}' version ${version.version}: ${(e as Error).message}`, { cause: e })
    }
    const format = request.output_format ?? 'nested'
    // No prototype: an output may be named "__proto__".
    const outputs = Object.create(null) as PredictResult['outputs']
    for (const name of outputNames) {
      const tensor = Object.hasOwn(fetched, name) ? fetched[name] : undefined
      if (!tensor) throw new InferenceFailedError(`onnxruntime returned no output '${name}' for model '${version.model}' version ${version.version}`)
      outputs[name] = encodeTensor(tensor, format)
    }
    return { model: version.model, version: version.version, outputs }
  }

  #metricsOf(version: LoadedVersion): VersionMetrics {
    let m = this.#versionMetrics.get(version)
    if (!m) {
      const labels = { model: version.model, version: String(version.version) }
      m = { ok: this.#metrics.requests.labels({ ...labels, status: '200' }), duration: this.#metrics.requestDuration.labels(labels) }
      this.#versionMetrics.set(version, m)
    }
    return m
  }
}
