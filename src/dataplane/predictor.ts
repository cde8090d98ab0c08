import { InferenceFailedError, ServerError } from '../errors.js'
import type { LoadedVersion } from '../lifecycle/versions/loaded-version.js'
import type { ModelRegistry } from '../lifecycle/versions/model-registry.js'
import type { ModelView } from '../lifecycle/versions/version-state.js'
import type { Logger } from '../log.js'
import { type LiveFigures, type LiveWindow, windowSizes } from '../metrics/live-figures.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import type { ModelConfig } from '../repository/model-config.js'
import { rowCount } from '../runtime/batcher.js'
import { decodeFeeds, selectOutputs, type Feeds, type Fetches } from '../runtime/feeds.js'
import type { Signature } from '../runtime/signature.js'
import { encodeTensor, type NestedValue, type TypedTensorJson } from '../runtime/tensor-encode.js'
import { checkOutputSize, type OutputPlan } from './output-limit.js'
import type { PredictRequest } from './predict-request.js'
import { answerOf, answerPlan, type AnswerPlan } from './prediction-answer.js'
import { PredictionIds } from './prediction-id.js'
import type { PredictionLogs } from './prediction-logs.js'
import { observeAll, type RequestTap } from './request-taps.js'

export interface PredictTarget {
  /** undefined: the default model. */
  readonly model?: string | undefined
  /** undefined: the active version. */
  readonly version?: number | undefined
  /** True once the client has gone away: its request is dropped if it has not started running. */
  readonly clientGone?: (() => boolean) | undefined
  /** The client's own prediction id (checked); without one, an id is made up. */
  readonly id?: string | undefined
  /** A request header by name: a canary's sticky key (model.json `rollout.stickyHeader`). */
  readonly header?: ((name: string) => string | undefined) | undefined
}

export interface InferResult {
  /** The prediction's id: the client's, or one made up; feedback names it. */
  readonly id: string
  /** The version that ran the request (its lease has ended: read-only facts only). */
  readonly version: LoadedVersion
  readonly fetched: Fetches
  readonly outputNames: readonly string[]
}

export interface PredictResult {
  readonly id: string
  readonly model: string
  readonly version: number
  readonly outputs: Record<string, NestedValue | TypedTensorJson>
}

const FEWER = 'ask for fewer rows, or for fewer outputs with "outputs"'

/** The simple API's outputs as nested arrays: typed output drops the nesting, and its cost. */
const NESTED_PLAN: OutputPlan = {
  layout: () => 'nested',
  remedy: () =>
    `${FEWER}, or for "output_format": "typed" (flat data, without a pair of brackets for every row)`,
}

/** The canary's sticky key for this request: the configured header's value, when a canary runs. */
function stickyKey(model: ModelView | undefined, target: PredictTarget): string | undefined {
  const settings = model?.rollout?.settings
  if (target.version !== undefined || settings?.mode !== 'canary') return undefined
  return settings.stickyHeader === undefined ? undefined : target.header?.(settings.stickyHeader)
}

const TYPED_PLAN: OutputPlan = { layout: () => 'flat', remedy: () => FEWER }

interface VersionMetrics {
  readonly ok: { inc(): void }
  readonly duration: { observe(value: number): void }
}

type FeedbackConfig = ModelConfig['feedback']

/** Where a version's predictions are remembered and its live figures kept. */
interface VersionFeedback {
  readonly plan: AnswerPlan
  /** model.json's `feedback.output` the plan was made for: a change makes a new plan. */
  readonly configured: string | undefined
}

export interface PredictorOptions {
  /** The most one answer may take once encoded (--max-output-size). */
  readonly maxOutputBytes: number
}

/**
 * Serves predictions without knowing about HTTP: lease a version, decode, run, encode, release.
 * Every request runs start to finish on the version it leased, whatever is swapped meanwhile.
 */
export class Predictor {
  readonly #registry: ModelRegistry
  readonly #metrics: ServerMetrics
  readonly #logger: Logger
  readonly #maxOutputBytes: number
  readonly #live: LiveFigures
  readonly #logs: PredictionLogs
  readonly #taps: readonly RequestTap[]
  readonly #ids = new PredictionIds()
  /** Each version's labelled metrics, looked up once instead of hashing labels per request. */
  readonly #versionMetrics = new WeakMap<LoadedVersion, VersionMetrics>()
  readonly #versionFeedback = new WeakMap<LoadedVersion, VersionFeedback>()

  constructor(
    registry: ModelRegistry,
    metrics: ServerMetrics,
    logger: Logger,
    options: PredictorOptions & {
      readonly live: LiveFigures
      readonly logs: PredictionLogs
      /** What watches requests beside answering them (drift, payload log, shadow). */
      readonly taps?: readonly RequestTap[]
    },
  ) {
    this.#registry = registry
    this.#metrics = metrics
    this.#logger = logger
    this.#maxOutputBytes = options.maxOutputBytes
    this.#live = options.live
    this.#logs = options.logs
    this.#taps = options.taps ?? []
  }

  /** The simple JSON API: nested arrays or typed objects in, the same out. */
  async predict(target: PredictTarget, request: PredictRequest): Promise<PredictResult> {
    const format = request.output_format ?? 'nested'
    const { id, version, fetched, outputNames } = await this.infer(
      target,
      (signature) => decodeFeeds(request.inputs, signature),
      (v) => selectOutputs(request.outputs, v.signature, v.outputNames),
      format === 'nested' ? NESTED_PLAN : TYPED_PLAN,
    )
    // No prototype: an output may be named "__proto__".
    const outputs = Object.create(null) as PredictResult['outputs']
    for (const name of outputNames) outputs[name] = encodeTensor(fetched[name]!, format)
    return { id, model: version.model, version: version.version, outputs }
  }

  /**
   * One inference, whatever the wire format: lease the version, build its feeds, run (batched
   * when it batches), release. Every request runs start to finish on the version it leased.
   * `decode` and `select` see the leased version's signature, so they check against what runs.
   * The answer's size, as `plan` will write it, is checked here, before the caller encodes it,
   * so that a refusal counts in the metrics like any other failed request.
   */
  async infer(
    target: PredictTarget,
    decode: (signature: Signature) => Feeds,
    select: (version: LoadedVersion) => readonly string[],
    plan: OutputPlan,
  ): Promise<InferResult> {
    const started = performance.now()
    const metrics = this.#metrics
    metrics.inFlightCount++
    let model = '_unknown'
    let version: LoadedVersion | undefined
    let feedback: FeedbackConfig | undefined
    try {
      const name = target.model ?? this.#registry.defaultModel()
      const known = this.#registry.get(name)
      if (known) model = name // unknown names stay out of label values
      feedback = known?.config.feedback
      const lease = this.#registry.lease(name, target.version, stickyKey(known, target))
      const leased = lease.version
      version = leased
      try {
        const t = performance.now()
        const feeds = decode(leased.signature)
        const outputNames = select(leased)
        leased.stats.recordInput(performance.now() - t)
        const tapped =
          known && this.#taps.length > 0
            ? this.#tap(() =>
                observeAll(
                  this.#taps,
                  { model: known, version: leased, routed: target.version === undefined },
                  feeds,
                ),
              )
            : undefined
        let fetched: Fetches
        try {
          // The feeds are this request's alone, and read again for their dims only (unless a tap
          // reads them after the run).
          fetched = await leased.run(feeds, outputNames, {
            clientGone: target.clientGone,
            handOver: tapped?.keepFeeds !== true,
          })
        } catch (e) {
          // Cancelled, timed out, a worker lost: already explained.
          if (e instanceof ServerError) throw e
          throw new InferenceFailedError(
            `onnxruntime failed to run model '${leased.model}' version ${leased.version}: ${(e as Error).message}`,
            { cause: e },
          )
        }
        const o = performance.now()
        for (const out of outputNames) {
          if (!Object.hasOwn(fetched, out))
            throw new InferenceFailedError(
              `onnxruntime returned no output '${out}' for model '${leased.model}' version ${leased.version}`,
            )
        }
        checkOutputSize(fetched, outputNames, plan, this.#maxOutputBytes)
        leased.stats.recordOutput(performance.now() - o)
        const ms = performance.now() - started
        const m = this.#metricsOf(leased)
        m.ok.inc()
        m.duration.observe(ms / 1000)
        leased.stats.recordRequest(true, ms, rowCount(feeds))
        this.#windowOf(leased, feedback).recordRequest(true, ms)
        const id = target.id ?? this.#ids.next()
        if (feedback) this.#remember(id, leased, fetched, feedback)
        if (tapped) this.#tap(() => tapped.after(id, fetched, feeds))
        return { id, version: leased, fetched, outputNames }
      } finally {
        lease.release()
      }
    } catch (e) {
      const status = e instanceof ServerError ? e.status : 500
      const versionLabel = version ? String(version.version) : ''
      if (status >= 500)
        this.#logger.warn('predict_failed', { model, version: versionLabel, error: e })
      metrics.requests.inc({ model, version: versionLabel, status: String(status) })
      const ms = performance.now() - started
      version?.stats.recordRequest(false, ms)
      // A client's mistake says nothing about the version: only runtime failures count against it.
      if (version && status >= 500) this.#windowOf(version, feedback).recordRequest(false, ms)
      throw e
    } finally {
      metrics.inFlightCount--
    }
  }

  /** A tap that fails is logged: what watches a request never fails it. */
  #tap<T>(step: () => T): T | undefined {
    try {
      return step()
    } catch (e) {
      this.#logger.error('request_tap_failed', { error: e, stack: (e as Error).stack })
      return undefined
    }
  }

  /** The version's live window; sized by model.json when this request makes it (a promotion makes it otherwise). */
  #windowOf(version: LoadedVersion, feedback: FeedbackConfig | undefined): LiveWindow {
    return (
      this.#live.find(version.model, version.version) ??
      this.#live.window(version.model, version.version, feedback && windowSizes(feedback.window))
    )
  }

  /** What the prediction answered, for feedback to score later (never its inputs). */
  #remember(id: string, version: LoadedVersion, fetched: Fetches, config: FeedbackConfig): void {
    if (config.remember === 0) return
    let f = this.#versionFeedback.get(version)
    if (!f || f.configured !== config.output) {
      f = { plan: answerPlan(version.signature, config.output), configured: config.output }
      this.#versionFeedback.set(version, f)
    }
    this.#logs
      .of(version.model, config.remember)
      .remember(id, version.version, answerOf(f.plan, fetched))
  }

  #metricsOf(version: LoadedVersion): VersionMetrics {
    let m = this.#versionMetrics.get(version)
    if (!m) {
      const labels = { model: version.model, version: String(version.version) }
      m = {
        ok: this.#metrics.requests.labels({ ...labels, status: '200' }),
        duration: this.#metrics.requestDuration.labels(labels),
      }
      this.#versionMetrics.set(version, m)
    }
    return m
  }
}
