import type { VersionBytes } from '../repository/read-version.js'
import type { SmokeSet } from '../repository/smoke-file.js'
import type { FileFingerprint } from '../repository/version-file.js'
import { InferenceStats } from '../metrics/inference-stats.js'
import { decideBatching, type BatchingDecision } from '../runtime/batch-check.js'
import { Batcher, rowCount, type Executor, type Runner } from '../runtime/batcher.js'
import type { Engine } from '../runtime/engine.js'
import type { Feeds } from '../runtime/feeds.js'
import { InsufficientMemoryError } from '../errors.js'
import { doesNotFit, footprint, memoryLeft } from './memory-budget.js'
import {
  chooseExecution,
  createEngine,
  type ExecutionChoice,
  widestExecution,
} from './serving-engine.js'
import { WorkerPool } from '../runtime/worker-pool.js'
import { pack } from '../runtime/wire-tensor.js'
import type { WarmPlan } from '../runtime/inference-worker.js'
import { type WarmUpPlan, warmUpRuns } from '../runtime/warm-up.js'
import type { Contract, GateJob, GateReport, StageResult } from './gate/gate-types.js'
import { roundMs } from './gate/stage-results.js'
import { smokeFeeds, warmupPlan, warmupStage } from './gate/warmup.js'
import type { AdminChange } from './admin-change.js'
import type { HistoryEntry } from './history.js'
import type { LifecycleContext } from './lifecycle-context.js'
import { LoadedVersion } from './loaded-version.js'
import type { ModelRecord, VersionRecord } from './model-registry.js'
import type { VersionState } from './version-state.js'
import { dropActivation, pushActivation } from './version-policy.js'

/** What set a promotion off, as history and metrics record it. */
export type PromotionTrigger = 'startup' | 'watch' | 'admin' | 'rollback'

export interface SwapResult {
  readonly from: number | undefined
  readonly to: number
  /** Milliseconds from the decision to the new version serving. */
  readonly ms: number
}

/**
 * The moves of one model's versions: gate job, serving session, warm-up, the swap, the retained
 * window. The swap is one assignment in ModelRegistry.activate; everything slow happens before it.
 */
export class Promoter {
  readonly #ctx: LifecycleContext
  readonly #model: ModelRecord

  constructor(ctx: LifecycleContext, model: ModelRecord) {
    this.#ctx = ctx
    this.#model = model
  }

  gateJob(
    record: VersionRecord,
    sha256: string,
    smoke: SmokeSet,
    o: { force?: boolean; skipSignature?: boolean } = {},
  ): GateJob {
    const model = this.#model
    const config = model.config
    const active = model.active
    const activeRecord = active ? model.versions.get(active.version) : undefined
    const declared = config.signature
    const contract: Contract | undefined = declared
      ? {
          source: 'model.json',
          inputs: declared.inputs.map((t) => ({ name: t.name, type: t.type, shape: t.shape })),
          outputs: declared.outputs.map((t) => ({ name: t.name, type: t.type, shape: t.shape })),
        }
      : active
        ? { source: 'active', inputs: active.signature.inputs, outputs: active.signature.outputs }
        : undefined
    return {
      model: model.name,
      version: record.version,
      candidate: { file: record.source.file, sha256 },
      root: this.#ctx.root,
      sessionOptions: config.session,
      smoke,
      requireSmoke: this.#ctx.options.requireSmoke || config.requireSmoke === true,
      contract,
      allowSignatureChange: config.allowSignatureChange,
      latency: config.latency,
      agreement: config.agreement,
      reference:
        active && activeRecord?.onDisk && active.version !== record.version
          ? { file: activeRecord.source.file, sha256: active.sha256, version: active.version }
          : undefined,
      ...(o.force && { force: true }),
      ...(o.skipSignature && { skipSignature: true }),
      // Timed at the largest batch it may run: what decides whether it is worth a thread.
      profileBatchSize: config.batching.enabled === false ? 1 : config.batching.maxBatchSize,
    }
  }

  /** The state of a version that is not moving: derived from what is loaded and what was decided. */
  restingState(record: VersionRecord): VersionState {
    const model = this.#model
    if (record.loaded && record.loaded === model.active) return { status: 'active' }
    if (record.loaded && model.retained.includes(record.loaded)) return { status: 'retained' }
    if (!record.onDisk) return { status: 'missing' }
    const v = record.verdict
    if (record.rolledBack && v?.sha256 === record.rolledBack.sha256)
      return { status: 'rolled_back', reason: record.rolledBack.reason }
    if (v?.kind === 'rejected')
      return {
        status: 'rejected',
        stage: v.stage ?? 'load',
        reason: v.reason ?? 'rejected',
        message: v.message ?? '',
      }
    if (v?.kind === 'passed')
      return { status: 'unloaded', reason: model.unloaded ? 'unloaded_on_request' : 'evicted' }
    return { status: 'discovered' }
  }

  recordRejection(
    record: VersionRecord,
    sha256: string | undefined,
    fp: FileFingerprint | undefined,
    failed: StageResult,
    trigger: PromotionTrigger,
    report?: GateReport,
  ): void {
    const { ctx, model } = { ctx: this.#ctx, model: this.#model }
    const reason = failed.reason ?? 'rejected'
    const message = failed.message ?? ''
    if (sha256) {
      record.verdict = {
        kind: 'rejected',
        sha256,
        stage: failed.stage,
        reason,
        message,
        at: new Date().toISOString(),
      }
      record.verdictFingerprint = fp
    }
    record.gate = report ?? {
      passed: false,
      unverified: false,
      stages: [failed],
      warnings: [],
      signature: undefined,
      ms: failed.ms,
    }
    // A replacement of the serving version's file that fails leaves the old bytes serving.
    record.state = record.loaded
      ? this.restingState(record)
      : { status: 'rejected', stage: failed.stage, reason, message }
    ctx.metrics.rejections.inc({ model: model.name, stage: failed.stage })
    ctx.metrics.promotions.inc({ model: model.name, result: 'rejected' })
    if (report)
      ctx.metrics.gateDuration.observe({ model: model.name, result: 'rejected' }, report.ms / 1000)
    ctx.logger.warn('version_rejected', {
      model: model.name,
      version: record.version,
      stage: failed.stage,
      reason,
      error: message,
    })
    void ctx.history.append({
      model: model.name,
      version: record.version,
      sha256,
      event: 'rejected',
      trigger,
      reason,
      message,
      stages: report?.stages ?? [failed],
    })
    ctx.persist()
  }

  /**
   * A version that passed the gate just now: serving session, warm-up, swap. `beforeSwap` runs
   * right before the swap, with no await in between (an admin change begins there).
   */
  async promoteGated(
    record: VersionRecord,
    bytes: VersionBytes,
    report: GateReport,
    smoke: SmokeSet,
    trigger: PromotionTrigger,
    beforeSwap?: () => AdminChange,
  ): Promise<boolean> {
    const feeds = smokeFeeds(smoke, report.signature)
    const loaded = await this.load(record, bytes, report, feeds, trigger)
    if (!loaded) return false
    this.swapIn(record, loaded.version, trigger, {
      stages: loaded.stages,
      unverified: report.unverified,
      gateMs: report.ms,
      change: beforeSwap?.(),
    })
    return true
  }

  /** A version whose bytes passed the gate before (recorded verdict): load and swap, no second gate. */
  async promoteWithoutGate(
    record: VersionRecord,
    bytes: VersionBytes,
    trigger: PromotionTrigger,
  ): Promise<boolean> {
    const loaded = await this.load(record, bytes, undefined, [], trigger)
    if (!loaded) return false
    this.swapIn(record, loaded.version, trigger, {
      stages: loaded.stages,
      unverified: record.verdict?.unverified === true,
      restored: true,
    })
    return true
  }

  /** At start: a version that was retained before the restart is loaded into the window again. */
  async retainWithoutGate(record: VersionRecord, bytes: VersionBytes): Promise<boolean> {
    const model = this.#model
    const loaded = await this.load(record, bytes, undefined, [], 'startup')
    if (!loaded) return false
    record.loaded = loaded.version
    model.retained.push(loaded.version)
    record.state = { status: 'retained' }
    this.#ctx.metrics.loadedVersions.set(
      { model: model.name },
      (model.active ? 1 : 0) + model.retained.length,
    )
    return true
  }

  /**
   * Creates the serving sessions, where the version will run (this thread, or its workers), and
   * warms them up. Throws InsufficientMemoryError, before anything is created, when the version
   * would not fit in the memory left.
   */
  async load(
    record: VersionRecord,
    bytes: VersionBytes,
    report: GateReport | undefined,
    fallbackFeeds: readonly Feeds[],
    trigger: PromotionTrigger,
  ): Promise<{ version: LoadedVersion; stages: StageResult[] } | undefined> {
    const { ctx, model } = { ctx: this.#ctx, model: this.#model }
    const config = model.config
    const recordedRunMs = record.verdict?.sha256 === bytes.sha256 ? record.verdict.runMs : undefined
    const runMs = report ? report.runMs : recordedRunMs
    const choice = chooseExecution(config.execution, ctx.options.execution, {
      bytes: bytes.bytes,
      runMs,
    })
    try {
      this.ensureFits(record.version, bytes.bytes.length, choice)
    } catch (e) {
      // Not loaded, nothing changed: an admin call answers 503, the pipeline defers the version.
      record.state = this.restingState(record)
      throw e
    }
    record.state = { status: 'warming' }
    const started = performance.now()
    ctx.logger.info('version_warming', {
      model: model.name,
      version: record.version,
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
        this.#engineHooks(record.version, config.execution.timeoutSeconds),
      )
    } catch (e) {
      this.recordRejection(
        record,
        bytes.sha256,
        record.verdictFingerprint,
        {
          stage: 'load',
          status: 'failed',
          ms: 0,
          reason: 'invalid_model',
          message: (e as Error).message,
        },
        trigger,
        report,
      )
      return undefined
    }
    const execution = await this.#execution(engine, record.version, fallbackFeeds)
    const plan = { ...warmupPlan(config, execution.batching), fallbackFeeds }
    const warmed =
      (engine instanceof WorkerPool ? await engine.warmEach(wirePlan(plan)) : undefined) ??
      (await warmUpRuns(engine, plan))
    const warm = warmupStage(plan, warmed)
    ctx.logger.info('version_warmed', {
      model: model.name,
      version: record.version,
      ms: roundMs(performance.now() - started),
      batching: execution.batching.enabled,
      ...(warm.reason !== undefined && { warning: warm.message }),
    })
    if (ctx.closed()) {
      await engine.release()
      return undefined
    }
    const stages = [...(report?.stages ?? []), warm]
    record.gate = {
      ...(report ?? {
        passed: true,
        unverified: record.verdict?.unverified === true,
        warnings: [],
        signature: engine.signature,
        ms: 0,
      }),
      stages,
    }
    record.verdict = {
      kind: 'passed',
      sha256: bytes.sha256,
      unverified: report ? report.unverified : record.verdict?.unverified,
      at: report ? new Date().toISOString() : (record.verdict?.at ?? new Date().toISOString()),
      ...(runMs !== undefined && { runMs }),
    }
    const onReleased = () => ctx.metrics.forgetVersion(model.name, record.version)
    const loaded = new LoadedVersion(model.name, record.version, bytes.sha256, engine, ctx.logger, {
      ...execution,
      choice,
      onReleased,
    })
    return { version: loaded, stages }
  }

  /**
   * Refuses a version whose sessions would not fit in the memory left (the file's size is enough
   * to tell, so callers check before reading it): InsufficientMemoryError, and nothing changes.
   */
  ensureFits(version: number, size: number, choice?: ExecutionChoice): void {
    const model = this.#model
    const config = model.config
    // Before reading, where it will run is not known yet: the larger footprint is assumed.
    const assumed = choice ?? widestExecution(config.execution, this.#ctx.options.execution)
    const why = doesNotFit(footprint(size, assumed), memoryLeft(this.#ctx.options.maxMemoryBytes))
    if (why)
      throw new InsufficientMemoryError(
        `version ${version} of model '${model.name}' was not loaded: ${why}`,
        { details: { model: model.name, version } },
      )
  }

  #engineHooks(version: number, timeoutSeconds: number) {
    const { ctx, model } = { ctx: this.#ctx, model: this.#model }
    const labels = { model: model.name, version: String(version) }
    return {
      timeoutMs: timeoutSeconds * 1000,
      onWorkerLost: (reason: 'crashed' | 'timeout', error: unknown) => {
        ctx.metrics.workersLost.inc({ model: model.name, reason })
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
  async #execution(
    engine: Engine,
    version: number,
    feeds: readonly Feeds[],
  ): Promise<{ runner: Runner; batching: BatchingDecision; stats: InferenceStats }> {
    const { ctx, model } = { ctx: this.#ctx, model: this.#model }
    const config = model.config.batching
    // Time inside onnxruntime (or, in workers, from hand-off to result), per run (a batch counts once).
    const inference = ctx.metrics.inferenceDuration.labels({
      model: model.name,
      version: String(version),
    })
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
    const labels = { model: model.name }
    const batcher = new Batcher(direct, config, {
      onBatch(rows, requests, oldestMs, totalMs) {
        ctx.metrics.batchSize.observe(labels, rows)
        ctx.metrics.queueDuration.observe(labels, oldestMs / 1000)
        stats.recordQueued(requests, totalMs)
      },
    })
    return { runner: batcher, batching, stats }
  }

  /**
   * Makes `next` the serving version. The swap is one assignment; then the replaced version is
   * retained (or, after a rollback, retired), and versions leaving the retained window are released
   * once their last request ends. With `change` (an admin change), releases and history entries
   * wait until state.json records it, and the change is undone if it cannot be.
   */
  swapIn(
    record: VersionRecord,
    next: LoadedVersion,
    trigger: PromotionTrigger,
    o: {
      stages?: readonly StageResult[]
      unverified?: boolean
      gateMs?: number
      restored?: boolean
      rollbackReason?: string
      change?: AdminChange | undefined
    } = {},
  ): SwapResult {
    const { ctx, model } = { ctx: this.#ctx, model: this.#model }
    const change = o.change
    const retire = (v: LoadedVersion) => (change ? change.retire(v) : v.retire())
    const appendHistory = (entry: Omit<HistoryEntry, 'time'>) =>
      change
        ? change.afterCommit(() => void ctx.history.append(entry))
        : void ctx.history.append(entry)
    const t = performance.now()
    const previous = ctx.registry.activate(model, next)
    const ms = performance.now() - t // the swap itself; what follows is bookkeeping
    record.loaded = next
    model.retained = model.retained.filter((v) => v !== next)
    if (previous && previous !== next) {
      const prevRecord = model.versions.get(previous.version)
      if (o.rollbackReason !== undefined || previous.version === next.version) {
        this.unload(previous, retire)
        if (o.rollbackReason !== undefined && prevRecord) {
          prevRecord.rolledBack = {
            sha256: previous.sha256,
            reason: o.rollbackReason,
            at: new Date().toISOString(),
          }
          dropActivation(model, previous.version)
        }
      } else {
        model.retained.unshift(previous)
      }
      if (prevRecord && prevRecord !== record) prevRecord.state = this.restingState(prevRecord)
    }
    pushActivation(model, next.version)
    record.state = { status: 'active' }
    this.#trimRetained(retire, appendHistory)
    const from = previous && previous !== next ? previous.version : undefined
    ctx.metrics.activeVersion.set({ model: model.name }, next.version)
    ctx.metrics.loadedVersions.set({ model: model.name }, 1 + model.retained.length)
    ctx.metrics.swapDuration.observe({ model: model.name }, ms / 1000)
    if (o.rollbackReason === undefined) {
      ctx.metrics.promotions.inc({ model: model.name, result: 'promoted' })
      if (o.gateMs !== undefined)
        ctx.metrics.gateDuration.observe({ model: model.name, result: 'passed' }, o.gateMs / 1000)
    }
    const event =
      o.rollbackReason !== undefined ? 'rolled_back' : o.restored ? 'restored' : 'promoted'
    ctx.logger.info(`version_${event === 'rolled_back' ? 'rolled_back_to' : event}`, {
      model: model.name,
      version: next.version,
      from,
      sha256: next.sha256,
      trigger,
      swapMs: roundMs(ms),
      ...(o.unverified && { unverified: true }),
    })
    if (o.unverified)
      ctx.logger.warn('version_unverified', {
        model: model.name,
        version: next.version,
        reason: 'no smoke cases: only a synthesized input was checked',
      })
    if (event !== 'rolled_back') {
      appendHistory({
        model: model.name,
        version: next.version,
        sha256: next.sha256,
        event,
        trigger,
        from,
        stages: o.stages,
        ...(o.unverified && { unverified: true }),
      })
    }
    if (change) change.record()
    else ctx.persist()
    return { from, to: next.version, ms }
  }

  /**
   * Takes a loaded version out of service (the caller has unpublished it): its record no longer
   * points to it, and it is retired, released once its last request ends (by `retire`, which an
   * admin change defers until state.json records it). Returns its record, for its new state.
   */
  unload(
    leaving: LoadedVersion,
    retire: (v: LoadedVersion) => void = (v) => v.retire(),
  ): VersionRecord | undefined {
    const record = this.#model.versions.get(leaving.version)
    if (record && record.loaded === leaving) record.loaded = undefined
    retire(leaving)
    return record
  }

  #trimRetained(
    retire: (v: LoadedVersion) => void,
    appendHistory: (entry: Omit<HistoryEntry, 'time'>) => void,
  ): void {
    const model = this.#model
    const keep = model.config.retain
    while (model.retained.length > keep) {
      const leaving = model.retained.pop()!
      const r = this.unload(leaving, retire)
      if (r) r.state = this.restingState(r)
      appendHistory({
        model: model.name,
        version: leaving.version,
        sha256: leaving.sha256,
        event: 'unloaded',
        reason: 'left the retained window',
      })
    }
  }
}

/** Warm-up for a worker: its smoke inputs as copies that cross the thread boundary. */
function wirePlan(plan: WarmUpPlan): WarmPlan {
  return {
    runs: plan.runs,
    batchSizes: plan.batchSizes,
    fallbackFeeds: plan.fallbackFeeds.slice(0, 4).map((f) => pack(f, false).tensors),
  }
}
