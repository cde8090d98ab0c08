import { InsufficientMemoryError } from '../../errors.js'
import type { Logger } from '../../log.js'
import { InferenceStats } from '../../metrics/inference-stats.js'
import type { ServerMetrics } from '../../metrics/server-metrics.js'
import type { ModelConfig } from '../../repository/model-config.js'
import type { VersionBytes } from '../../repository/read-version.js'
import { decideBatching, type BatchingDecision } from '../../runtime/batch-check.js'
import { Batcher, rowCount, type Executor, type Runner } from '../../runtime/batcher.js'
import type { Engine } from '../../runtime/engine.js'
import type { Feeds } from '../../runtime/feeds.js'
import type { WarmPlan } from '../../runtime/inference-worker.js'
import { type WarmUpPlan, warmUpRuns } from '../../runtime/warm-up.js'
import { pack } from '../../runtime/wire-tensor.js'
import { WorkerPool } from '../../runtime/worker-pool.js'
import type { StageResult } from '../gate/gate-types.js'
import { roundMs } from '../gate/stage-results.js'
import { warmupPlan, warmupStage } from '../gate/warmup.js'
import { LoadedVersion } from '../versions/loaded-version.js'
import { doesNotFit, footprint, memoryLeft } from './memory-budget.js'
import {
  createEngine,
  type ExecutionChoice,
  type ExecutionSetting,
  widestExecution,
} from './serving-engine.js'

/** What creating and warming a version's sessions needs of the server. */
export interface ServingContext {
  readonly metrics: ServerMetrics
  readonly logger: Logger
  readonly closed: () => boolean
}

/** Its engine could not be created from bytes that passed: the version is rejected at `load`. */
export class EngineCreationError extends Error {}

/**
 * Creates a version's serving sessions where `choice` says (this thread, or its workers), decides
 * whether its requests are batched, and warms them up. Knows nothing of the version's record: the
 * caller (Promoter.serve) moves its state. Undefined when the server closed meanwhile (the sessions
 * are released).
 */
export async function loadForServing(
  ctx: ServingContext,
  target: { readonly model: string; readonly version: number; readonly config: ModelConfig },
  bytes: VersionBytes,
  choice: ExecutionChoice,
  fallbackFeeds: readonly Feeds[],
  trigger: string,
): Promise<{ loaded: LoadedVersion; warm: StageResult; engine: Engine } | undefined> {
  const { model, version, config } = target
  const started = performance.now()
  ctx.logger.info('version_warming', {
    model,
    version,
    bytes: bytes.bytes.length,
    trigger,
    execution: choice.mode,
    ...(choice.mode === 'workers' && { workers: choice.workers }),
  })
  let engine: Engine
  try {
    engine = await createEngine(
      bytes.bytes,
      choice,
      config.session,
      engineHooks(ctx, model, version, config.execution.timeoutSeconds),
    )
  } catch (e) {
    throw new EngineCreationError((e as Error).message, { cause: e })
  }
  const execution = await executionOf(ctx, engine, model, version, config.batching, fallbackFeeds)
  const plan = { ...warmupPlan(config, execution.batching), fallbackFeeds }
  const warmed =
    (engine instanceof WorkerPool ? await engine.warmEach(wirePlan(plan)) : undefined) ??
    (await warmUpRuns(engine, plan))
  const warm = warmupStage(plan, warmed)
  ctx.logger.info('version_warmed', {
    model,
    version,
    ms: roundMs(performance.now() - started),
    batching: execution.batching.enabled,
    ...(warm.reason !== undefined && { warning: warm.message }),
  })
  if (ctx.closed()) {
    await engine.release()
    return undefined
  }
  const onReleased = () => ctx.metrics.forgetVersion(model, version)
  const loaded = new LoadedVersion(model, version, bytes.sha256, engine, ctx.logger, {
    ...execution,
    choice,
    onReleased,
  })
  return { loaded, warm, engine }
}

/**
 * Refuses a version whose sessions would not fit in the memory left (the file's size is enough
 * to tell, so callers check before reading it): InsufficientMemoryError, and nothing changes.
 * Before reading, where it will run is not known yet (no `choice`): the larger footprint is assumed.
 */
export function ensureFits(
  target: { readonly model: string; readonly version: number; readonly config: ModelConfig },
  size: number,
  options: { readonly execution: ExecutionSetting; readonly maxMemoryBytes: number | undefined },
  choice?: ExecutionChoice,
): void {
  const { model, version, config } = target
  const assumed = choice ?? widestExecution(config.execution, options.execution)
  const why = doesNotFit(footprint(size, assumed), memoryLeft(options.maxMemoryBytes))
  if (why)
    throw new InsufficientMemoryError(
      `version ${version} of model '${model}' was not loaded: ${why}`,
      { details: { model, version } },
    )
}

function engineHooks(ctx: ServingContext, model: string, version: number, timeoutSeconds: number) {
  const labels = { model, version: String(version) }
  return {
    timeoutMs: timeoutSeconds * 1000,
    onWorkerLost: (reason: 'crashed' | 'timeout', error: unknown) => {
      ctx.metrics.workersLost.inc({ model, reason })
      ctx.logger.error('inference_worker_lost', {
        ...labels,
        reason,
        error: (error as Error)?.message ?? String(error),
      })
    },
    onStuckChange: (stuck: number) => ctx.metrics.workersStuck.set(labels, stuck),
  }
}

/** How requests will reach the engine: batched (when safe) or one by one. */
async function executionOf(
  ctx: ServingContext,
  engine: Engine,
  model: string,
  version: number,
  config: ModelConfig['batching'],
  feeds: readonly Feeds[],
): Promise<{ runner: Runner; batching: BatchingDecision; stats: InferenceStats }> {
  // Time inside onnxruntime (or, in workers, from hand-off to result), per run (a batch counts once).
  const inference = ctx.metrics.inferenceDuration.labels({ model, version: String(version) })
  const stats = new InferenceStats()
  const direct: Executor = {
    concurrency: engine.concurrency,
    async run(f, o, options) {
      const t = performance.now()
      const out = await engine.run(f, o, options)
      const ms = performance.now() - t
      inference.observe(ms / 1000)
      stats.recordRun(ms, rowCount(f))
      return out
    },
  }
  const batching = await decideBatching(engine, config, feeds)
  if (!batching.enabled) return { runner: direct, batching, stats }
  const labels = { model }
  const batcher = new Batcher(direct, config, {
    onBatch(rows, requests, oldestMs, totalMs) {
      ctx.metrics.batchSize.observe(labels, rows)
      ctx.metrics.queueDuration.observe(labels, oldestMs / 1000)
      stats.recordQueued(requests, totalMs)
    },
  })
  return { runner: batcher, batching, stats }
}

/** Warm-up for a worker: its smoke inputs as copies that cross the thread boundary. */
function wirePlan(plan: WarmUpPlan): WarmPlan {
  return {
    runs: plan.runs,
    batchSizes: plan.batchSizes,
    fallbackFeeds: plan.fallbackFeeds.slice(0, 4).map((f) => pack(f, false).tensors),
  }
}
