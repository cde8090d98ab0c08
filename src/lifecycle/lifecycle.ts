import { DEFAULT_MODEL_CONFIG } from '../repository/model-config.js'
import { isInside } from '../repository/layout.js'
import { scanRepository, type ModelSource } from '../repository/scanner.js'
import { watchRepository } from '../repository/watcher.js'
import { AdminOperations, type PromoteResult, type RollbackResult } from './admin-operations.js'
import { coalesced } from './coalesced.js'
import { GateRunner } from './gate/gate-runner.js'
import { History, type HistoryEntry } from './history.js'
import type { LifecycleContext, LifecycleDeps } from './lifecycle-context.js'
import type { ModelRecord } from './model-registry.js'
import { newVersionRecord } from './model-registry.js'
import { ModelPipeline } from './model-pipeline.js'
import { StatePersister, type StateWriteFailure } from './state-persister.js'
import { StateStore } from './state-store.js'

export type { PromoteResult, RollbackResult } from './admin-operations.js'

export interface Readiness {
  readonly ready: boolean
  /**
   * state.json cannot be written (a full or read-only disk): what serves is not recorded, and a
   * restart would serve what was recorded last. Writes are retried; admin changes are refused.
   */
  readonly stateWriteFailing: boolean
  readonly stateWriteError?: StateWriteFailure
  readonly models: Record<
    string,
    {
      readonly active: number | null
      readonly status: 'serving' | 'loading' | 'failed' | 'empty' | 'unloaded'
    }
  >
}

/**
 * The lifecycle of every model (docs/architecture.md): watches the models directory, runs each
 * model's promotion pipeline, restores state at start, and carries out rollbacks and promotions.
 */
export class Lifecycle {
  readonly #deps: LifecycleDeps
  readonly #pipelines = new Map<string, ModelPipeline>()
  readonly #store: StateStore
  readonly #history: History
  readonly #gates: GateRunner
  #ctx: LifecycleContext | undefined
  #persister: StatePersister | undefined
  #watcher: { ready: Promise<void>; close(): Promise<void> } | undefined
  #rescanTimer: NodeJS.Timeout | undefined
  #admin: AdminOperations | undefined
  #started = false
  #ambiguityReported = false
  #closed = false
  readonly #reported = new Set<string>()
  /** Lists the whole models directory: one listing at a time, requests while one waits join it. */
  readonly #rescan = coalesced(() => this.#rescanNow())

  constructor(deps: LifecycleDeps) {
    this.#deps = deps
    this.#store = new StateStore(deps.stateDir)
    this.#history = new History(deps.stateDir, deps.logger)
    this.#gates = new GateRunner(deps.logger)
  }

  async start(): Promise<void> {
    const { logger, registry, metrics, options } = this.#deps
    const { state, problem } = await this.#store.load()
    if (problem) logger.error('state_unreadable', { problem })
    const skipped = await this.#history.load()
    if (skipped)
      logger.warn('history_lines_skipped', {
        count: skipped,
        reason: 'not JSON (a line cut short by a crash)',
      })
    const scan = await scanRepository(this.#deps.modelsDir)
    this.#persister = new StatePersister(this.#store, registry, state, logger)
    this.#ctx = {
      root: scan.root,
      registry,
      metrics,
      logger,
      gates: this.#gates,
      history: this.#history,
      options,
      persist: () => this.#persister!.persist(),
      commit: (undo) => this.#persister!.commit(undo),
      reportIgnored: (ignored, o) => {
        for (const i of ignored) {
          // A refusal is one warning, not one per pass or rescan.
          const key = `${i.path}\0${i.reason}`
          const seen = this.#reported.has(key)
          this.#reported.add(key)
          if (i.refused) {
            if (!seen) logger.warn('path_refused', { path: i.path, reason: i.reason })
          } else if (!seen || o?.everySkip) {
            logger.debug('path_ignored', { path: i.path, reason: i.reason })
          }
        }
      },
      closed: () => this.#closed,
    }
    this.#admin = new AdminOperations({
      deps: this.#deps,
      root: scan.root,
      history: this.#history,
      gates: this.#gates,
      pipeline: (name) => this.#pipeline(name),
      commit: (undo) => this.#persister!.commit(undo),
    })
    this.#ctx.reportIgnored(scan.ignored)
    // Watch before the first passes, so nothing that lands meanwhile is missed.
    this.#watcher = watchRepository({
      root: scan.root,
      ignore: [this.#deps.stateDir],
      poll: options.poll,
      logger,
      onEvent: (e) => this.#onWatchEvent(e.model, e.event, e.parts.length),
    })
    await this.#watcher.ready
    for (const source of scan.models)
      if (!isInside(this.#deps.stateDir, source.dir)) this.#register(source)
    this.#settleDefault(state.defaultModel)
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
    logger.info('models_loaded', {
      models: registry.list().map((m) => ({ name: m.name, active: m.active?.version ?? null })),
    })
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
            : !pipeline || (!pipeline.judged && !pipeline.settled) || hasCandidateInFlight(m)
              ? 'loading'
              : 'failed'
      // A model whose every version was rejected does not hold readiness: it would take every
      // other model out of service. /readyz lists it as failed.
      if (status === 'loading') ready = false
      models[m.name] = { active: m.active?.version ?? null, status }
    }
    const failing = this.#persister?.failing
    return {
      ready,
      stateWriteFailing: failing !== undefined,
      ...(failing && { stateWriteError: failing }),
      models,
    }
  }

  rollback(
    name: string,
    o: { version?: number | undefined; reason?: string | undefined },
  ): Promise<RollbackResult> {
    return this.#admin!.rollback(name, o)
  }

  promote(
    name: string,
    o: { version: number; force?: boolean | undefined },
  ): Promise<PromoteResult> {
    return this.#admin!.promote(name, o)
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
        const record = pipeline.promoter.unload(v)
        if (record) record.state = pipeline.promoter.restingState(record)
      }
      // Versions evicted before are now unloaded on request too: nothing loads them until `load`.
      for (const record of model.versions.values())
        if (record.state.status === 'unloaded')
          record.state = pipeline.promoter.restingState(record)
      this.#deps.metrics.activeVersion.set({ model: name }, 0)
      this.#deps.metrics.loadedVersions.set({ model: name }, 0)
      this.#deps.logger.info('model_unloaded', {
        model: name,
        versions: leaving.map((v) => v.version),
      })
      for (const v of leaving)
        void this.#history.append({
          model: name,
          version: v.version,
          sha256: v.sha256,
          event: 'unloaded',
          trigger: 'admin',
          reason: 'unloaded on request',
        })
    })
  }

  /** Serves a model again (V2 `load`): one pass over its folder, gating what needs it; true if it serves. */
  async load(name: string): Promise<boolean> {
    if (!this.#pipelines.has(name)) await this.#rescan()
    const { pipeline, model } = this.#pipeline(name)
    model.unloaded = false
    // Versions unloaded on request are merely evicted now: a pass may load them again.
    for (const record of model.versions.values())
      if (record.state.status === 'unloaded') record.state = pipeline.promoter.restingState(record)
    await pipeline.schedule('admin')
    // A file copied in just before may still be inside its stability window: the pass waits for
    // it and runs again. Answer once the model serves, or there is nothing left to try.
    const deadline =
      Date.now() + this.#deps.options.stabilityMs * 4 + model.config.gateTimeoutSeconds * 1000
    while (!model.active && !pipeline.settled && !this.#closed) {
      const left = deadline - Date.now()
      if (left <= 0) break
      // Every pass may have served it (a file still in its stability window gets a pass of its own).
      const ended = pipeline.passEnded()
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        ended,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, left))),
      ])
      clearTimeout(timer)
    }
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
    this.#persister?.close()
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

  #register(source: ModelSource): ModelPipeline {
    const existing = this.#pipelines.get(source.name)
    if (existing) return existing
    const record: ModelRecord = {
      name: source.name,
      dir: source.dir,
      config: DEFAULT_MODEL_CONFIG,
      configError: undefined,
      versions: new Map(source.versions.map((v) => [v.version, newVersionRecord(v)])),
      active: undefined,
      retained: [],
      activations: [],
      unloaded: false,
      refused: [],
    }
    this.#deps.registry.add(record)
    const pipeline = new ModelPipeline(this.#ctx!, record)
    this.#pipelines.set(source.name, pipeline)
    return pipeline
  }

  #onWatchEvent(model: string | undefined, event: string, depth: number): void {
    if (this.#closed || !this.#started || model === undefined) return
    const pipeline = this.#pipelines.get(model)
    // O(1) per event: a burst of thousands of events must not mean thousands of listings.
    if (!pipeline) {
      // A new model folder (or a file at the top level): the listing decides what it is.
      void this.#rescan()
      return
    }
    void pipeline.schedule('watch')
    if (event === 'addDir' && depth === 2) pipeline.folderAppeared()
  }

  /**
   * Keeps `POST /predict` answering for the same model as models come and go: the default chosen
   * once (the only model, or --default-model) is recorded in state.json. When nothing was chosen
   * and a second model makes `/predict` ambiguous, that is said once, as it happens.
   */
  #settleDefault(recorded: string | undefined): void {
    const { registry, logger } = this.#deps
    if (registry.settleDefault(recorded)) {
      logger.info('default_model', {
        model: registry.recordedDefault,
        reason:
          'recorded in state.json: POST /predict serves it until --default-model names another',
      })
      this.#persister!.persist()
    }
    const ambiguous = registry.recordedDefault === undefined && registry.list().length > 1
    if (ambiguous && !this.#ambiguityReported) {
      logger.warn('default_model_ambiguous', {
        models: registry.list().map((m) => m.name),
        message:
          'POST /predict answers 404 no_default_model: several models and none chosen as the default; use /models/{name}/predict or --default-model',
      })
    }
    this.#ambiguityReported = ambiguous
  }

  async #rescanNow(): Promise<void> {
    if (this.#closed || !this.#started) return
    try {
      const scan = await scanRepository(this.#deps.modelsDir)
      this.#ctx!.reportIgnored(scan.ignored)
      for (const source of scan.models) {
        if (isInside(this.#deps.stateDir, source.dir)) continue
        const isNew = !this.#pipelines.has(source.name)
        const pipeline = this.#register(source)
        if (isNew) this.#deps.logger.info('model_discovered', { model: source.name })
        void pipeline.schedule('watch')
      }
      this.#settleDefault(undefined)
      const present = new Set(scan.models.map((m) => m.name))
      for (const [name, pipeline] of this.#pipelines)
        if (!present.has(name)) void pipeline.schedule('watch')
    } catch (e) {
      this.#deps.logger.warn('rescan_failed', { error: e })
    }
  }
}

/**
 * Is a version of the model being read, gated or warmed right now? Once a model's first load is
 * over with nothing serving, it is `failed`, and only a version actually being decided makes it
 * `loading` again: a periodic re-listing does not.
 */
function hasCandidateInFlight(m: ModelRecord): boolean {
  for (const v of m.versions.values()) {
    const status = v.state.status
    if (status === 'loading' || status === 'validating' || status === 'warming') return true
  }
  return false
}
