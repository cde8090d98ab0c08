import { ConflictError, GateFailedError, VersionNotFoundError } from '../errors.js'
import type { Logger } from '../log.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import { ConfigFileError } from '../repository/model-config.js'
import { readVersionBytes, VersionReadError, type VersionBytes } from '../repository/read-version.js'
import { scanRepository, type ModelSource } from '../repository/scanner.js'
import { readSmokeSet, type SmokeSet } from '../repository/smoke-file.js'
import { watchRepository } from '../repository/watcher.js'
import { isInside } from '../repository/layout.js'
import type { StageResult } from './gate/gate-types.js'
import { GateRunner } from './gate/gate-runner.js'
import { History, type HistoryEntry } from './history.js'
import { createPersister, type LifecycleContext, type LifecycleOptions } from './lifecycle-context.js'
import type { ModelRecord, ModelRegistry, VersionRecord } from './model-registry.js'
import { newVersionRecord } from './model-registry.js'
import { ModelPipeline } from './model-pipeline.js'
import { StateStore } from './state-store.js'
import { previousActivation } from './version-policy.js'

export interface LifecycleDeps {
  readonly modelsDir: string
  readonly stateDir: string
  readonly registry: ModelRegistry
  readonly metrics: ServerMetrics
  readonly logger: Logger
  readonly options: LifecycleOptions
}

export interface Readiness {
  readonly ready: boolean
  readonly models: Record<string, { readonly active: number | null; readonly status: 'serving' | 'loading' | 'failed' | 'empty' | 'unloaded' }>
}

export interface RollbackResult {
  readonly model: string
  readonly from: number
  readonly to: number
  /** true: the target was still loaded, the rollback was a pointer swap. */
  readonly warm: boolean
  readonly ms: number
  readonly reason: string
  readonly stages?: readonly StageResult[]
}

export interface PromoteResult {
  readonly model: string
  readonly from: number | null
  readonly to: number
  readonly warm: boolean
  readonly ms: number
  readonly stages?: readonly StageResult[]
}

/**
 * The lifecycle of every model (DESIGN §2, §5): watches the models directory, runs each model's
 * promotion pipeline, restores state at start, and carries out rollbacks and promotions.
 */
export class Lifecycle {
  readonly #deps: LifecycleDeps
  readonly #pipelines = new Map<string, ModelPipeline>()
  readonly #store: StateStore
  readonly #history: History
  readonly #gates: GateRunner
  #ctx: LifecycleContext | undefined
  #persister: { persist(): void; flush(): Promise<void> } | undefined
  #watcher: { ready: Promise<void>; close(): Promise<void> } | undefined
  #rescanTimer: NodeJS.Timeout | undefined
  #started = false
  #closed = false
  readonly #reported = new Set<string>()

  constructor(deps: LifecycleDeps) {
    this.#deps = deps
    this.#store = new StateStore(deps.stateDir)
    this.#history = new History(deps.stateDir)
    this.#gates = new GateRunner(deps.logger)
  }

  get history(): History {
    return this.#history
  }

  async start(): Promise<void> {
    const { logger, registry, metrics, options } = this.#deps
    const { state, problem } = await this.#store.load()
    if (problem) logger.error('state_unreadable', { problem })
    const skipped = await this.#history.load()
    if (skipped) logger.warn('history_lines_skipped', { count: skipped, reason: 'not JSON (a line cut short by a crash)' })
    const scan = await scanRepository(this.#deps.modelsDir)
    this.#persister = createPersister(this.#store, registry, state, logger)
    this.#ctx = {
      root: scan.root,
      registry,
      metrics,
      logger,
      gates: this.#gates,
      history: this.#history,
      options,
      persist: () => this.#persister!.persist(),
      closed: () => this.#closed,
    }
    for (const i of scan.ignored) {
      this.#reported.add(i.path)
      if (i.refused) logger.warn('path_refused', { path: i.path, reason: i.reason })
      else logger.debug('path_ignored', { path: i.path, reason: i.reason })
    }
    // Watch before the first passes, so nothing that lands meanwhile is missed.
    this.#watcher = watchRepository({
      root: scan.root,
      ignore: [this.#deps.stateDir],
      poll: options.poll,
      logger,
      onEvent: (e) => this.#onWatchEvent(e.model, e.event, e.parts.length),
    })
    await this.#watcher.ready
    for (const source of scan.models) if (!isInside(this.#deps.stateDir, source.dir)) this.#register(source)
    for (const pipeline of this.#pipelines.values()) {
      if (this.#closed) return
      await pipeline.restore(state.models[pipeline.model.name])
      await pipeline.schedule('startup')
    }
    this.#started = true
    this.#persister.persist()
    this.#rescanTimer = setInterval(() => void this.#rescan(), options.rescanIntervalMs)
    this.#rescanTimer.unref()
    // Events during the initial passes were not acted on: look at everything once more.
    void this.#rescan()
    logger.info('models_loaded', { models: registry.list().map((m) => ({ name: m.name, active: m.active?.version ?? null })) })
  }

  readiness(): Readiness {
    const models: Record<string, Readiness['models'][string]> = {}
    let ready = this.#started && !this.#closed
    for (const m of this.#deps.registry.list()) {
      const pipeline = this.#pipelines.get(m.name)
      const status = m.active
        ? 'serving'
        : m.unloaded
          ? 'unloaded'
          : m.versions.size === 0
          ? 'empty'
          : !pipeline || !pipeline.settled
            ? 'loading'
            : 'failed'
      // A model whose every version was rejected does not hold readiness: it would take every
      // other model out of service. /readyz lists it as failed.
      if (status === 'loading') ready = false
      models[m.name] = { active: m.active?.version ?? null, status }
    }
    return { ready, models }
  }

  /** Rollback (DESIGN §2): a pointer swap to a retained version, else load and gate it first. */
  async rollback(name: string, o: { version?: number | undefined; reason?: string | undefined }): Promise<RollbackResult> {
    const { pipeline, model } = this.#pipeline(name)
    const reason = o.reason ?? 'manual rollback'
    const from = model.active
    if (!from) throw new ConflictError(`model '${name}' has no active version to roll back from`)
    const target = o.version ?? previousActivation(model)
    if (target === undefined) throw new ConflictError(`model '${name}' has no earlier version to roll back to; name one with {"version": N}`)
    if (target === from.version) throw new ConflictError(`version ${target} of model '${name}' is already active`)
    const record = this.#requireVersion(model, target)
    const retained = model.retained.find((v) => v.version === target)
    if (retained) {
      // Warm: no queue, no I/O. The old version finishes its in-flight requests, then is released.
      const swap = pipeline.promoter.swapIn(record, retained, 'rollback', { rollbackReason: reason })
      return this.#rolledBack(model, from.version, target, true, swap.ms, reason)
    }
    return pipeline.exclusive(async () => {
      const started = performance.now()
      const current = model.active
      if (!current) throw new ConflictError(`model '${name}' has no active version to roll back from`)
      if (current.version === target) throw new ConflictError(`version ${target} of model '${name}' is already active`)
      const bytes = await this.#readForAdmin(model, record)
      if (record.verdict?.kind === 'rejected' && record.verdict.sha256 === bytes.sha256) {
        throw new ConflictError(`version ${target} was rejected by its gate (${record.verdict.reason}: ${record.verdict.message}); promote it with "force" to serve it anyway`)
      }
      // A version that served before may have another signature (the contract moved on); one that
      // never served is held to the contract like any candidate.
      const { report } = await this.#gateForAdmin(pipeline, record, bytes, { skipSignature: model.activations.includes(target) }, 'rollback')
      const loaded = await pipeline.promoter.load(record, bytes, report, [], 'rollback')
      if (!loaded) throw new GateFailedError(`version ${target} could not be loaded for serving`, { details: { stages: record.gate?.stages } })
      pipeline.promoter.swapIn(record, loaded.version, 'rollback', { rollbackReason: reason })
      const result = await this.#rolledBack(model, current.version, target, false, performance.now() - started, reason)
      return { ...result, stages: loaded.stages }
    })
  }

  /** Explicit promotion (DESIGN §2): gated unless retained (it served and is loaded) or forced. */
  promote(name: string, o: { version: number; force?: boolean | undefined }): Promise<PromoteResult> {
    const { pipeline, model } = this.#pipeline(name)
    const record = this.#requireVersion(model, o.version)
    return pipeline.exclusive(async () => {
      const started = performance.now()
      const from = model.active?.version ?? null
      if (record.loaded && record.loaded === model.active) throw new ConflictError(`version ${o.version} of model '${name}' is already active`)
      model.unloaded = false // an explicit promotion serves the model again
      const retained = model.retained.find((v) => v.version === o.version)
      if (retained) {
        record.rolledBack = undefined
        const swap = pipeline.promoter.swapIn(record, retained, 'admin')
        await this.#persister!.flush()
        return { model: name, from, to: o.version, warm: true, ms: swap.ms }
      }
      const bytes = await this.#readForAdmin(model, record)
      // An explicit promotion brings back a rolled-back version (DESIGN §2).
      record.rolledBack = undefined
      const { report, smoke } = await this.#gateForAdmin(pipeline, record, bytes, { force: o.force === true }, 'admin')
      if (!(await pipeline.promoter.promoteGated(record, bytes, report, smoke, 'admin'))) {
        throw new GateFailedError(`version ${o.version} could not be loaded for serving`, { details: { stages: record.gate?.stages } })
      }
      const ms = performance.now() - started
      await this.#persister!.flush()
      return { model: name, from, to: o.version, warm: false, ms, stages: record.gate?.stages ?? [] }
    })
  }

  /**
   * Stops serving a model (V2 repository extension `unload`): its versions are released once their
   * last requests end, and nothing is promoted until `load`. In memory only: a restart serves it again.
   */
  async unload(name: string): Promise<void> {
    const { pipeline, model } = this.#pipeline(name)
    await pipeline.exclusive(async () => {
      model.unloaded = true
      const leaving = [model.active, ...model.retained].filter((v) => v !== undefined)
      this.#deps.registry.deactivate(model)
      model.retained = []
      for (const v of leaving) {
        const record = model.versions.get(v.version)
        if (record && record.loaded === v) record.loaded = undefined
        v.retire()
        if (record) record.state = pipeline.promoter.restingState(record)
      }
      this.#deps.metrics.activeVersion.set({ model: name }, 0)
      this.#deps.metrics.loadedVersions.set({ model: name }, 0)
      this.#deps.logger.info('model_unloaded', { model: name, versions: leaving.map((v) => v.version) })
      for (const v of leaving) void this.#history.append({ model: name, version: v.version, sha256: v.sha256, event: 'unloaded', trigger: 'admin', reason: 'unloaded on request' })
    })
  }

  /** Serves a model again (V2 `load`): one pass over its folder, gating what needs it; true if it serves. */
  async load(name: string): Promise<boolean> {
    if (!this.#pipelines.has(name)) await this.#rescan()
    const { pipeline, model } = this.#pipeline(name)
    model.unloaded = false
    await pipeline.schedule('admin')
    // A file copied in just before may still be inside its stability window: the pass waits for
    // it and runs again. Answer once the model serves, or there is nothing left to try.
    const deadline = Date.now() + this.#deps.options.stabilityMs * 4 + (model.config?.gateTimeoutSeconds ?? 120) * 1000
    while (!model.active && !pipeline.settled && Date.now() < deadline && !this.#closed) await new Promise((r) => setTimeout(r, 20))
    return model.active !== undefined
  }

  historyOf(name: string, limit: number): HistoryEntry[] {
    this.#deps.registry.require(name)
    return this.#history.recent(name, limit)
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#rescanTimer)
    for (const p of this.#pipelines.values()) p.close()
    await this.#watcher?.close()
    await this.#gates.close()
    await this.#persister?.flush()
    await this.#history.flush()
    for (const model of this.#deps.registry.list()) {
      model.active?.retire()
      for (const v of model.retained) v.retire()
    }
  }

  #pipeline(name: string): { pipeline: ModelPipeline; model: ModelRecord } {
    const model = this.#deps.registry.require(name)
    return { pipeline: this.#pipelines.get(name)!, model }
  }

  #requireVersion(model: ModelRecord, version: number): VersionRecord {
    const record = model.versions.get(version)
    if (!record) throw new VersionNotFoundError(`model '${model.name}' has no version ${version}`)
    return record
  }

  async #readForAdmin(model: ModelRecord, record: VersionRecord): Promise<VersionBytes> {
    if (!record.onDisk) throw new ConflictError(`version ${record.version} of model '${model.name}' is not loaded and its file is missing`)
    try {
      return await readVersionBytes(this.#ctx!.root, record.source)
    } catch (e) {
      if (e instanceof VersionReadError) throw new ConflictError(e.message)
      throw e
    }
  }

  /** Gates a version for an admin operation; a failure is recorded and answered with 422. */
  async #gateForAdmin(
    pipeline: ModelPipeline,
    record: VersionRecord,
    bytes: VersionBytes,
    o: { force?: boolean; skipSignature?: boolean },
    trigger: 'admin' | 'rollback',
  ) {
    const model = pipeline.model
    let smoke: SmokeSet
    try {
      smoke = await readSmokeSet(model.dir, record.source.dir)
    } catch (e) {
      if (e instanceof ConfigFileError) throw new ConflictError(`cannot gate version ${record.version}: ${e.message}`)
      throw e
    }
    record.state = { status: 'validating' }
    const outcome = await this.#gates.run(pipeline.promoter.gateJob(record, bytes.sha256, smoke, o), {
      timeoutMs: (model.config?.gateTimeoutSeconds ?? 120) * 1000,
    })
    if (outcome.kind === 'cancelled') throw new ConflictError('the server is shutting down')
    const report = outcome.report
    if (!report.passed) {
      const failed = report.stages.find((s) => s.status === 'failed')!
      pipeline.promoter.recordRejection(record, bytes.sha256, undefined, failed, trigger, report)
      throw new GateFailedError(`version ${record.version} failed its gate at '${failed.stage}': ${failed.message}`, {
        details: { stages: report.stages },
      })
    }
    return { report, smoke }
  }

  async #rolledBack(model: ModelRecord, from: number, to: number, warm: boolean, ms: number, reason: string): Promise<RollbackResult> {
    const { metrics, logger } = this.#deps
    // Answered only once state.json says so: a crash right after must not bring `from` back.
    await this.#persister!.flush()
    metrics.rollbacks.inc({ model: model.name, trigger: 'manual', warm: String(warm) })
    logger.info('rolled_back', { model: model.name, from, to, warm, ms, reason })
    const fromRecord = model.versions.get(from)
    await this.#history.append({
      model: model.name,
      version: from,
      sha256: fromRecord?.rolledBack?.sha256,
      event: 'rolled_back',
      trigger: 'admin',
      to,
      reason,
      warm,
      ms,
    })
    return { model: model.name, from, to, warm, ms, reason }
  }

  #register(source: ModelSource): ModelPipeline {
    const existing = this.#pipelines.get(source.name)
    if (existing) return existing
    const record: ModelRecord = {
      name: source.name,
      dir: source.dir,
      config: undefined,
      configError: undefined,
      versions: new Map(source.versions.map((v) => [v.version, newVersionRecord(v)])),
      active: undefined,
      retained: [],
      activations: [],
      unloaded: false,
    }
    this.#deps.registry.add(record)
    const pipeline = new ModelPipeline(this.#ctx!, record)
    this.#pipelines.set(source.name, pipeline)
    return pipeline
  }

  #onWatchEvent(model: string | undefined, event: string, depth: number): void {
    if (this.#closed || !this.#started || model === undefined) return
    const pipeline = this.#pipelines.get(model)
    if (!pipeline) {
      // A new model folder (or a file at the top level): the listing decides what it is.
      void this.#rescan()
      return
    }
    void pipeline.schedule('watch')
    if (event === 'addDir' && depth === 2) {
      // chokidar may not yet watch a folder that just appeared, and miss a file renamed into it.
      for (const ms of [300, 1500]) setTimeout(() => void pipeline.schedule('watch'), ms).unref()
    }
  }

  async #rescan(): Promise<void> {
    if (this.#closed || !this.#started) return
    try {
      const scan = await scanRepository(this.#deps.modelsDir)
      for (const i of scan.ignored) {
        // One line per ignored path, not one per rescan.
        if (this.#reported.has(i.path)) continue
        this.#reported.add(i.path)
        if (i.refused) this.#deps.logger.warn('path_refused', { path: i.path, reason: i.reason })
        else this.#deps.logger.debug('path_ignored', { path: i.path, reason: i.reason })
      }
      for (const source of scan.models) {
        if (isInside(this.#deps.stateDir, source.dir)) continue
        const isNew = !this.#pipelines.has(source.name)
        const pipeline = this.#register(source)
        if (isNew) this.#deps.logger.info('model_discovered', { model: source.name })
        void pipeline.schedule('watch')
      }
      const present = new Set(scan.models.map((m) => m.name))
      for (const [name, pipeline] of this.#pipelines) if (!present.has(name)) void pipeline.schedule('watch')
    } catch (e) {
      this.#deps.logger.warn('rescan_failed', { error: e })
    }
  }
}

