import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { LiveFigures } from './live-figures.js'

const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]

/**
 * What GET /metrics answers: one server's metrics, or, in a worker of `modelgate serve --workers N`,
 * every worker's, aggregated by the primary process. In that case each metric is combined by its
 * `aggregator`: counters and histograms add up (prom-client's default, `sum`); a gauge that is a
 * fact each process holds alike (a version number, a share) says which other way below.
 */
export interface MetricsExposition {
  readonly contentType: string
  text(): Promise<string>
}

export interface MetricSources {
  /** The body budget in use (BodyBudget.used). */
  readonly inflightBodyBytes?: () => number
  /** Every version's live window (accuracy and MAE are read from them at scrape time). */
  readonly live?: LiveFigures
}

/**
 * Every metric of one server instance, on a registry it owns: no prom-client global, so two
 * servers can run in one process (tests do) without mixing their numbers.
 */
export class ServerMetrics implements MetricsExposition {
  readonly registry = new Registry()

  readonly requests = new Counter({
    name: 'modelgate_requests_total',
    help: 'Prediction requests by model, version and HTTP status.',
    labelNames: ['model', 'version', 'status'] as const,
    registers: [this.registry],
  })

  readonly requestDuration = new Histogram({
    name: 'modelgate_request_duration_seconds',
    help: 'Prediction request duration, from parsed body to encoded response.',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  readonly inferenceDuration = new Histogram({
    name: 'modelgate_inference_duration_seconds',
    help: 'Time inside onnxruntime session.run().',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  /** Prediction requests being served now: a plain number on the request path, read at scrape time. */
  inFlightCount = 0

  readonly inFlight: Gauge = new Gauge({
    name: 'modelgate_in_flight_requests',
    help: 'Prediction requests being served now.',
    registers: [this.registry],
    collect: (): void => this.inFlight.set(this.inFlightCount),
  })

  readonly loadedVersions = new Gauge({
    name: 'modelgate_loaded_versions',
    help: 'Versions with a live onnxruntime session, per model.',
    labelNames: ['model'] as const,
    registers: [this.registry],
    // Every worker loads the same versions (a copy each): a sum would count each version N times.
    aggregator: 'max',
  })

  readonly activeVersion = new Gauge({
    name: 'modelgate_active_version',
    help: 'The version that serves each model (0: none).',
    labelNames: ['model'] as const,
    registers: [this.registry],
    // A version number, not a count: the same in every worker once they follow state.json; while
    // one lags behind a swap, the highest (as the dashboard's max by (model) across replicas).
    aggregator: 'max',
  })

  readonly promotions = new Counter({
    name: 'modelgate_promotions_total',
    help: 'Candidate versions by outcome: promoted, rejected, or superseded by a newer one while gated.',
    labelNames: ['model', 'result'] as const,
    registers: [this.registry],
  })

  readonly rejections = new Counter({
    name: 'modelgate_rejections_total',
    help: 'Versions rejected, by the gate stage that failed.',
    labelNames: ['model', 'stage'] as const,
    registers: [this.registry],
  })

  readonly rollbacks = new Counter({
    name: 'modelgate_rollbacks_total',
    help: 'Rollbacks by trigger (manual: an admin call; auto: a probation rule was breached) and by whether the target was still loaded.',
    labelNames: ['model', 'trigger', 'warm'] as const,
    registers: [this.registry],
  })

  readonly gateDuration = new Histogram({
    name: 'modelgate_gate_duration_seconds',
    help: 'Gate run time (load to agreement, in the gate process), by result.',
    labelNames: ['model', 'result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  })

  readonly swapDuration = new Histogram({
    name: 'modelgate_swap_duration_seconds',
    help: 'Time to make a ready version serve: the pointer swap and the retained-window update.',
    labelNames: ['model'] as const,
    buckets: [0.000001, 0.00001, 0.0001, 0.001, 0.01, 0.1],
    registers: [this.registry],
  })

  readonly batchSize = new Histogram({
    name: 'modelgate_batch_size',
    help: 'Rows (samples) per onnxruntime run of a batching model.',
    labelNames: ['model'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  })

  readonly queueDuration = new Histogram({
    name: 'modelgate_queue_duration_seconds',
    help: 'Time a request waited in its batching queue before its run started.',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  readonly inflightBodyBytes = new Gauge({
    name: 'modelgate_inflight_body_bytes',
    help: 'Request-body bytes buffered now across all requests (bounded by --max-inflight-body-size).',
    registers: [this.registry],
    collect: (): void => this.inflightBodyBytes.set(this.#sources.inflightBodyBytes?.() ?? 0),
  })

  readonly workersLost = new Counter({
    name: 'modelgate_inference_workers_lost_total',
    help: 'Inference workers lost and replaced, by reason: crashed (the thread died) or timeout (a run outlived execution.timeoutSeconds).',
    labelNames: ['model', 'reason'] as const,
    registers: [this.registry],
  })

  readonly workersStuck = new Gauge({
    name: 'modelgate_inference_workers_stuck',
    help: 'Inference workers ended for a timeout that are still inside their run (onnxruntime cannot interrupt one).',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  })

  readonly feedback = new Counter({
    name: 'modelgate_feedback_total',
    help: 'Feedback items by the version that answered and result: right or wrong (labels), value (regression), duplicate, invalid, unknown (an id not remembered; version "").',
    labelNames: ['model', 'version', 'result'] as const,
    registers: [this.registry],
  })

  readonly liveAccuracy: Gauge = new Gauge({
    name: 'modelgate_live_accuracy',
    help: 'Accuracy of each version over its last feedback items (model.json feedback.window); no series until it has label feedback.',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
    collect: (): void => this.#collectLive(this.liveAccuracy, 'accuracy'),
    // Each worker scores the feedback on its own predictions: a mean of means (workers that have
    // none have no series), close to the whole when the workers share the traffic evenly.
    aggregator: 'average',
  })

  readonly liveMae: Gauge = new Gauge({
    name: 'modelgate_live_mae',
    help: 'Mean absolute error of each version over its last value feedback items; no series until it has value feedback.',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
    collect: (): void => this.#collectLive(this.liveMae, 'mae'),
    aggregator: 'average', // as modelgate_live_accuracy
  })

  readonly probations = new Counter({
    name: 'modelgate_probations_total',
    help: 'Probations ended, by result: passed, or rolled_back (a rule was breached).',
    labelNames: ['model', 'result'] as const,
    registers: [this.registry],
  })

  readonly rollouts = new Counter({
    name: 'modelgate_rollouts_total',
    help: 'Rollouts ended (model.json rollout), by mode and result: promoted, rejected (shadow disagreement), rolled_back (a canary rule breached), aborted (by an operator), cancelled (another version became active, or a newer one is rolled out).',
    labelNames: ['model', 'mode', 'result'] as const,
    registers: [this.registry],
  })

  readonly canaryPercent = new Gauge({
    name: 'modelgate_canary_percent',
    help: "The share of a model's requests (%) its canary answers now; 0 when no canary runs.",
    labelNames: ['model'] as const,
    registers: [this.registry],
    // Each worker routes the same share of its own requests: shares do not add up.
    aggregator: 'max',
  })

  readonly shadowRequests = new Counter({
    name: 'modelgate_shadow_requests_total',
    help: 'Requests mirrored to a shadow candidate, by result: agreed, disagreed, failed (the candidate failed where the active version answered), dropped (not mirrored: the candidate was busy).',
    labelNames: ['model', 'version', 'result'] as const,
    registers: [this.registry],
  })

  readonly driftPsi = new Gauge({
    name: 'modelgate_drift_psi',
    help: 'Population stability index of each feature of the active version\'s live window against its reference (model.json drift); feature: the column, "" for a rank-1 input, mean/std, or frequency (string/bool inputs, and the label output).',
    labelNames: ['model', 'input', 'feature'] as const,
    registers: [this.registry],
    // Each worker judges the window of its own requests; an index does not add up, and the worst
    // window is the one to look at.
    aggregator: 'max',
  })

  readonly webhookDeliveries = new Counter({
    name: 'modelgate_webhook_deliveries_total',
    help: 'Lifecycle events sent to a webhook, by result: delivered, failed (every retry failed), dropped (the queue was full: the oldest waiting event goes) or abandoned (still queued at shutdown).',
    labelNames: ['webhook', 'result'] as const,
    registers: [this.registry],
  })

  readonly webhookQueueDepth = new Gauge({
    name: 'modelgate_webhook_queue_depth',
    help: 'Lifecycle events waiting for (or being sent to) a webhook.',
    labelNames: ['webhook'] as const,
    registers: [this.registry],
  })

  readonly payloadLogLines = new Counter({
    name: 'modelgate_payload_log_lines_total',
    help: 'Lines of the payload logs (sampled predictions and their feedback), by result: written, dropped (the queue was full, or the line larger than a payload file may grow) or failed (lost to a write that failed).',
    labelNames: ['model', 'result'] as const,
    registers: [this.registry],
  })

  readonly eventStreams = new Gauge({
    name: 'modelgate_event_streams',
    help: 'Clients following GET /events now.',
    registers: [this.registry],
  })

  /** Delays of the event loop, sampled every 10 ms; read and reset at each scrape. */
  readonly #loopDelay = monitorEventLoopDelay({ resolution: 10 })

  readonly eventLoopLag: Gauge = new Gauge({
    name: 'modelgate_event_loop_lag_seconds',
    help: 'How late the event loop ran since the previous scrape: the longest delay (stat="max") and the 99th percentile (stat="p99"). Everything on the main thread waits this long.',
    labelNames: ['stat'] as const,
    registers: [this.registry],
    // Each worker has an event loop of its own: the latest one is what some request waited.
    aggregator: 'max',
    collect: (): void => {
      const h = this.#loopDelay
      // The histogram counts the sampling interval in every delay: what is left is the lateness.
      const late = (ns: number) => Math.max(0, ns / 1e9 - 0.01)
      this.eventLoopLag.set({ stat: 'max' }, h.count > 0 ? late(h.max) : 0)
      this.eventLoopLag.set({ stat: 'p99' }, h.count > 0 ? late(h.percentile(99)) : 0)
      h.reset()
    },
  })

  /** Numbers other pieces own, read at scrape time: nothing is counted twice on the request path. */
  readonly #sources: MetricSources

  constructor(sources: MetricSources = {}) {
    this.#sources = sources
    // Process metrics keep their standard names (process_*, nodejs_*) so stock dashboards work.
    collectDefaultMetrics({ register: this.registry })
    this.#loopDelay.enable()
  }

  #collectLive(gauge: Gauge, figure: 'accuracy' | 'mae'): void {
    gauge.reset()
    for (const { model, version, window } of this.#sources.live?.entries() ?? []) {
      const value = window.snapshot()[figure]
      if (value !== null) gauge.set({ model, version: String(version) }, value)
    }
  }

  /** Stops sampling the event loop (a server that closes leaves no timer behind). */
  close(): void {
    this.#loopDelay.disable()
  }

  /**
   * A version's session is gone: its per-version series go too, so a server that promotes versions
   * all day does not grow a series (and its memory) for every version it ever served.
   */
  forgetVersion(model: string, version: number): void {
    const labels = { model, version: String(version) }
    this.requestDuration.remove(labels)
    this.inferenceDuration.remove(labels)
    this.workersStuck.remove(labels)
    for (const status of [
      '200',
      '400',
      '404',
      '405',
      '413',
      '415',
      '422',
      '499',
      '500',
      '503',
      '504',
    ])
      this.requests.remove({ ...labels, status })
  }

  get contentType(): string {
    return this.registry.contentType
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }
}
