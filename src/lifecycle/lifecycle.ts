import { ConflictError } from '../errors.js'
import { scanRepository, type ModelSource } from '../repository/scanner.js'
import {
  AdminOperations,
  type PromoteResult,
  type RollbackResult,
} from './admin/admin-operations.js'
import { GateRunner } from './gate/gate-runner.js'
import { History, type HistoryEntry } from './state/history.js'
import type { LifecycleContext, LifecycleDeps } from './lifecycle-context.js'
import { ModelPipeline } from './promotion/model-pipeline.js'
import { ProbationWatch } from './promotion/probation-watch.js'
import { RolloutWatch } from './promotion/rollout-watch.js'
import { ModelVersions } from './versions/model-versions.js'
import { IgnoredPaths } from './ignored-paths.js'
import { ModelsWatch } from './models-watch.js'
import { type Readiness, readinessOf } from './readiness.js'
import { type AdminRequest, AdminInbox } from './replicas/admin-inbox.js'
import { PeerFigures, publishFigures } from './replicas/peer-figures.js'
import {
  Replica,
  type ReplicaHeartbeat,
  type ReplicasView,
  type Role,
  STALE_AFTER_MS,
} from './replicas/replica.js'
import { StatePersister } from './state/state-persister.js'
import { emptyState, type PersistedState, StateStore } from './state/state-store.js'

export type { PromoteResult, RollbackResult } from './admin/admin-operations.js'
export type { Readiness } from './readiness.js'
export type { ReplicasView } from './replicas/replica.js'

/** A forwarded admin change waits this long for the gatekeeper (a promote: its gate's time as well). */
const FORWARD_TIMEOUT_MS = 30_000
/** A follower that cannot bring a model in line tries again this often (not on every tick). */
const BEHIND_RETRY_MS = 5000

export interface RolloutAborted {
  readonly model: string
  /** The candidate, now rolled back. */
  readonly version: number
  readonly mode: 'shadow' | 'canary'
  /** The version that answers every request again. */
  readonly active: number
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
  readonly #ignored: IgnoredPaths
  #ctx: LifecycleContext | undefined
  #persister: StatePersister | undefined
  #watch: ModelsWatch | undefined
  #judging: NodeJS.Timeout | undefined
  #admin: AdminOperations | undefined
  readonly #replica: Replica
  readonly #inbox: AdminInbox
  /** The other replicas' figures of the versions being judged (read by the gatekeeper). */
  readonly #peers = new PeerFigures()
  /** This replica holds the gatekeeper lease (and has caught up with the state): it gates and records. */
  #gatekeeper = false
  /** state.json as last followed (a follower reads it again only when it changed). */
  #followedKey: string | undefined
  #following: Promise<void> = Promise.resolve()
  /** Models a follower could not bring in line with state.json, and why. */
  readonly #behind = new Map<string, string>()
  #behindSince = 0
  #started = false
  #ambiguityReported = false
  #closed = false

  constructor(deps: LifecycleDeps) {
    this.#deps = deps
    this.#replica = new Replica({
      stateDir: deps.stateDir,
      logger: deps.logger,
      describe: () => this.#describe(),
      becameGatekeeper: () => this.#becomeGatekeeper(),
      becameFollower: () => this.#becomeFollower(),
      tick: (role) => this.#tickReplica(role),
      heard: (beats) =>
        this.#peers.update(beats, { self: this.#replica.id, freshMs: STALE_AFTER_MS }),
    })
    // Probations and canary steps are judged on every replica's figures pooled.
    deps.live.peers = this.#peers
    const fence = () => this.#replica.fence()
    this.#store = new StateStore(deps.stateDir, fence)
    this.#history = new History(deps.stateDir, deps.logger, deps.events, {
      writes: () => this.#gatekeeper,
      fence,
    })
    this.#inbox = new AdminInbox({
      stateDir: deps.stateDir,
      replica: this.#replica.id,
      logger: deps.logger,
    })
    this.#gates = new GateRunner(deps.logger)
    this.#ignored = new IgnoredPaths(deps.logger)
  }

  /** This replica's role among the servers sharing the state directory. */
  get role(): Role {
    return this.#gatekeeper ? 'gatekeeper' : 'follower'
  }

  /** This replica's id among those sharing the state directory. */
  get replicaId(): string {
    return this.#replica.id
  }

  /** Other replicas share the state directory (seen in the last 5 s). */
  get hasPeers(): boolean {
    return this.#replica.others > 0
  }

  /** True while this replica holds the gatekeeper lease; webhooks are sent by it alone. */
  get gatekeeper(): boolean {
    return this.#gatekeeper
  }

  async start(): Promise<void> {
    const { logger, registry, metrics, options } = this.#deps
    this.#gatekeeper = (await this.#replica.start()) === 'gatekeeper'
    const { state, problem } = this.#gatekeeper
      ? await this.#store.load()
      : { state: (await this.#store.read()) ?? emptyState(), problem: undefined }
    if (problem) logger.error('state_unreadable', { problem })
    const skipped = await this.#history.load()
    if (skipped)
      logger.warn('history_lines_skipped', {
        count: skipped,
        reason: 'not JSON (a line cut short by a crash)',
      })
    const scan = await scanRepository(this.#deps.modelsDir)
    this.#persister = new StatePersister(
      this.#store,
      registry,
      state,
      logger,
      () => this.#gatekeeper,
    )
    this.#ctx = {
      root: scan.root,
      metrics,
      live: this.#deps.live,
      logger,
      gates: this.#gates,
      history: this.#history,
      options,
      persist: () => this.#persister!.persist(),
      commit: (undo) => this.#persister!.commit(undo),
      reportIgnored: (ignored, o) => this.#ignored.report(ignored, o),
      closed: () => this.#closed,
      gatekeeper: () => this.#gatekeeper,
    }
    this.#admin = new AdminOperations({
      deps: this.#deps,
      root: scan.root,
      history: this.#history,
      pipeline: (name) => this.#pipeline(name),
      commit: (undo) => this.#persister!.commit(undo),
    })
    this.#ctx.reportIgnored(scan.ignored)
    this.#watch = new ModelsWatch({
      root: scan.root,
      modelsDir: this.#deps.modelsDir,
      stateDir: this.#deps.stateDir,
      poll: options.poll,
      rescanIntervalMs: options.rescanIntervalMs,
      logger,
      reportIgnored: (ignored) => this.#ctx!.reportIgnored(ignored),
      listed: (models) => this.#listed(models),
      changed: (model, event, depth) => this.#changed(model, event, depth),
    })
    // Watch before the first passes, so nothing that lands meanwhile is missed.
    await this.#watch.watch()
    for (const source of this.#watch.models(scan.models)) this.#register(source)
    this.#settleDefault(state.defaultModel)
    for (const pipeline of this.#pipelines.values()) {
      if (this.#closed) return
      await pipeline.restore(state.models[pipeline.versions.name])
      await pipeline.schedule('startup')
    }
    this.#started = true
    this.#persister.persist()
    const probations = new ProbationWatch({
      live: this.#deps.live,
      models: () => [...this.#pipelines.values()].map((p) => p.versions),
      rollBack: (model, o) => this.#admin!.rollback(model, o),
    })
    const rollouts = new RolloutWatch({
      live: this.#deps.live,
      models: () => [...this.#pipelines.values()].map((p) => p.versions),
    })
    // Probations and rollouts are judged on the live figures, on a timer, off the request path.
    // The gatekeeper's alone: followers take its decisions from state.json.
    this.#judging = setInterval(() => {
      if (!this.#gatekeeper) return
      probations.check()
      rollouts.check()
    }, options.probationCheckMs ?? 1000)
    this.#judging.unref()
    // Events during the initial passes were not acted on: look at everything once more.
    this.#watch.startRescans()
    this.#replica.run()
    logger.info('models_loaded', {
      models: registry.list().map((m) => ({ name: m.name, active: m.active?.version ?? null })),
    })
  }

  readiness(): Readiness {
    return readinessOf({
      running: this.#started && !this.#closed,
      models: this.#deps.registry.list(),
      pipeline: (name) => this.#pipelines.get(name),
      stateWriteFailure: this.#persister?.failing,
    })
  }

  /** Who is who among the replicas sharing the state directory (`GET /replicas`). */
  replicas(): Promise<ReplicasView> {
    return this.#replica.view()
  }

  rollback(
    name: string,
    o: { version?: number | undefined; reason?: string | undefined },
  ): Promise<RollbackResult> {
    if (!this.#gatekeeper)
      return this.#forward({ op: 'rollback', model: name, args: o }) as Promise<RollbackResult>
    return this.#admin!.rollback(name, o)
  }

  promote(
    name: string,
    o: { version: number; force?: boolean | undefined; skipProbation?: boolean | undefined },
  ): Promise<PromoteResult> {
    if (!this.#gatekeeper)
      return this.#forward({ op: 'promote', model: name, args: o }) as Promise<PromoteResult>
    return this.#admin!.promote(name, o)
  }

  /**
   * Ends the model's rollout (`POST /models/{name}/rollout/abort`): every request goes to the active
   * version again, and the candidate is marked rolled back (not rolled out again by itself).
   */
  async abortRollout(name: string, o: { reason?: string | undefined }): Promise<RolloutAborted> {
    if (!this.#gatekeeper)
      return this.#forward({ op: 'abort', model: name, args: o }) as Promise<RolloutAborted>
    const versions = this.#pipeline(name).versions
    const reason = o.reason ?? 'aborted by an operator'
    const ended = versions.rolloutFailed('rolled_back', 'rollout_aborted', {
      event: 'rollout_aborted',
      trigger: 'admin',
      message: reason,
    })
    if (!ended) throw new ConflictError(`model '${name}' has no rollout in progress`)
    return { model: name, version: ended.version, mode: ended.mode, active: ended.against }
  }

  /**
   * Stops serving a model (V2 repository extension `unload`): its versions are released once their
   * last requests end, and nothing is promoted until `load`. In memory only: a restart serves it again.
   */
  async unload(name: string): Promise<void> {
    const pipeline = this.#pipeline(name)
    await pipeline.exclusive(async () => pipeline.versions.unloadedOnRequest())
  }

  /** Serves a model again (V2 `load`): one pass over its folder, gating what needs it; true if it serves. */
  async load(name: string): Promise<boolean> {
    if (!this.#pipelines.has(name)) await this.#watch?.rescan()
    const pipeline = this.#pipeline(name)
    pipeline.versions.servedAgain()
    // A follower serves what state.json names again; the gatekeeper passes over the folder.
    if (!this.#gatekeeper) await this.#follow(true)
    await pipeline.schedule('admin')
    // A file copied in just before may still be inside its stability window: the pass waits for
    // it and runs again. Answer once the model serves, or there is nothing left to try.
    return pipeline.servingOrSettled(
      this.#deps.options.stabilityMs * 4 + pipeline.versions.config.gateTimeoutSeconds * 1000,
    )
  }

  /** An entry from outside the lifecycle (drift): written and published like the lifecycle's own. */
  record(entry: Omit<HistoryEntry, 'time'>): Promise<void> {
    return this.#history.append(entry)
  }

  historyOf(name: string, limit: number): HistoryEntry[] {
    this.#deps.registry.require(name)
    return this.#history.recent(name, limit)
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#judging)
    for (const p of this.#pipelines.values()) p.close()
    await this.#watch?.close()
    await this.#gates.close()
    this.#persister?.close()
    await this.#persister?.flush()
    await this.#history.flush()
    // Last: the state is written, and another replica may take over from here.
    await this.#replica.close()
    for (const p of this.#pipelines.values()) p.versions.retireAll()
  }

  // --- replicas --------------------------------------------------------------------------------

  /**
   * A follower: the admin change is the gatekeeper's to make. Sent through the state directory,
   * answered with the gatekeeper's answer; this replica has followed it when the promise resolves.
   */
  async #forward(request: AdminRequest): Promise<unknown> {
    const pipeline = this.#pipeline(request.model) // model_not_found here, as on the gatekeeper
    const gateMs = pipeline.versions.config.gateTimeoutSeconds * 1000
    const result = await this.#inbox.forward(
      request,
      FORWARD_TIMEOUT_MS + (request.op === 'promote' ? gateMs : 0),
    )
    await this.#follow(true)
    return result
  }

  /** The gatekeeper carries out a change a follower was asked for. */
  #carryOut(request: AdminRequest): Promise<unknown> {
    const args = request.args as never
    switch (request.op) {
      case 'rollback':
        return this.rollback(request.model, args)
      case 'promote':
        return this.promote(request.model, args)
      case 'abort':
        return this.abortRollout(request.model, args)
    }
  }

  async #tickReplica(role: Role): Promise<void> {
    if (this.#closed) return
    if (role === 'gatekeeper') {
      if (this.#gatekeeper) await this.#inbox.serve((r) => this.#carryOut(r))
      return
    }
    await this.#follow(false)
    await this.#history.follow()
  }

  /** One follow at a time: the latest state.json, read again only when it changed (or `force`). */
  #follow(force: boolean): Promise<void> {
    const next = this.#following.then(() => this.#followNow(force))
    this.#following = next.catch((e: unknown) =>
      this.#deps.logger.warn('follow_failed', { error: e, stack: (e as Error).stack }),
    )
    return this.#following
  }

  async #followNow(force: boolean): Promise<void> {
    if (this.#closed || this.#gatekeeper) return
    const retry = this.#behind.size > 0 && Date.now() - this.#behindSince >= BEHIND_RETRY_MS
    const { seen, state } = await this.#store.readIfChanged(
      force || retry ? undefined : this.#followedKey,
    )
    this.#followedKey = seen
    if (state) await this.#followState(state)
  }

  async #followState(state: PersistedState): Promise<void> {
    this.#persister!.followed(state)
    this.#settleDefault(state.defaultModel)
    const behind = new Map<string, string>()
    for (const [name, persisted] of Object.entries(state.models)) {
      const pipeline = this.#pipelines.get(name)
      if (!pipeline) {
        // A model folder this replica has not listed yet: list, and follow it next time.
        if (persisted.active) behind.set(name, 'not listed here yet')
        void this.#watch?.rescan()
        continue
      }
      const why = await pipeline.follow(persisted)
      if (why !== undefined) behind.set(name, why)
    }
    for (const [name, why] of behind)
      if (this.#behind.get(name) !== why)
        this.#deps.logger.warn('replica_behind', { model: name, reason: why })
    for (const name of this.#behind.keys())
      if (!behind.has(name)) this.#deps.logger.info('replica_caught_up', { model: name })
    this.#behind.clear()
    for (const [name, why] of behind) this.#behind.set(name, why)
    this.#behindSince = Date.now()
  }

  /** The lease was taken: in line with the last state written first, then gating and recording. */
  async #becomeGatekeeper(): Promise<void> {
    this.#gates.prepare() // while it follows: the first gate then finds its process started
    await this.#follow(true)
    this.#gatekeeper = true
    this.#behind.clear()
    this.#deps.logger.info('replica_role', { id: this.#replica.id, role: 'gatekeeper' })
    // What arrived while another replica held the lease (or while none did) is this one's to gate.
    for (const pipeline of this.#pipelines.values()) void pipeline.schedule('watch')
    void this.#watch?.rescan()
  }

  /** The lease was lost: what this replica does from now on, the new gatekeeper records. */
  #becomeFollower(): void {
    this.#gatekeeper = false
    this.#peers.update([], { self: this.#replica.id, freshMs: 0 })
    this.#followedKey = undefined // follow at once, whatever this replica did meanwhile
    this.#deps.logger.warn('replica_role', { id: this.#replica.id, role: 'follower' })
  }

  #describe(): Pick<ReplicaHeartbeat, 'active' | 'behind' | 'figures'> {
    const models = this.#deps.registry.list()
    const active: Record<string, number | null> = {}
    for (const m of models) active[m.name] = m.active?.version ?? null
    const figures = publishFigures(models, this.#deps.live)
    return {
      active,
      ...(this.#behind.size > 0 && { behind: Object.fromEntries(this.#behind) }),
      ...(figures && { figures }),
    }
  }

  #pipeline(name: string): ModelPipeline {
    this.#deps.registry.require(name) // answers model_not_found
    return this.#pipelines.get(name)!
  }

  #register(source: ModelSource): ModelPipeline {
    const existing = this.#pipelines.get(source.name)
    if (existing) return existing
    const versions = new ModelVersions(source, this.#ctx!)
    this.#deps.registry.add(versions)
    const pipeline = new ModelPipeline(this.#ctx!, versions)
    this.#pipelines.set(source.name, pipeline)
    return pipeline
  }

  #changed(model: string | undefined, event: string, depth: number): void {
    if (this.#closed || !this.#started || model === undefined) return
    const pipeline = this.#pipelines.get(model)
    // O(1) per event: a burst of thousands of events must not mean thousands of listings.
    if (!pipeline) {
      // A new model folder (or a file at the top level): the listing decides what it is.
      void this.#watch!.rescan()
      return
    }
    void pipeline.schedule('watch')
    if (event === 'addDir' && depth === 2) pipeline.folderAppeared()
  }

  /** A listing of the whole directory: new models are registered, and every model passes. */
  #listed(models: readonly ModelSource[]): void {
    if (this.#closed || !this.#started) return
    for (const source of models) {
      const isNew = !this.#pipelines.has(source.name)
      const pipeline = this.#register(source)
      if (isNew) this.#deps.logger.info('model_discovered', { model: source.name })
      void pipeline.schedule('watch')
    }
    this.#settleDefault(undefined)
    const present = new Set(models.map((m) => m.name))
    for (const [name, pipeline] of this.#pipelines)
      if (!present.has(name)) void pipeline.schedule('watch')
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
}
