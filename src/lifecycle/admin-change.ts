import { StateWriteFailedError } from '../errors.js'
import type { Logger } from '../log.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import type { LoadedVersion } from './loaded-version.js'
import type { ModelRecord, ModelRegistry, VersionRecord } from './model-registry.js'
import type { VersionState } from './version-state.js'

export interface AdminChangeContext {
  readonly registry: ModelRegistry
  readonly metrics: ServerMetrics
  readonly logger: Logger
  /** StatePersister.commit */
  readonly commit: (undo: () => void) => Promise<void>
  readonly restingState: (record: VersionRecord) => VersionState
}

interface RecordBefore {
  readonly loaded: VersionRecord['loaded']
  readonly rolledBack: VersionRecord['rolledBack']
  readonly state: VersionState
}

/**
 * An admin change to one model (a rollback, a promotion) stands only once state.json records it:
 * an answer of "done" means a crash right after cannot bring the old version back. Until then the
 * change can be undone: the versions it takes out of service are held (not released) and its
 * history entries wait. If the write fails, the model is put back as it was, the version that
 * served before serves again, and `committed` throws state_write_failed.
 *
 * Begin it right before the swap, with no await in between, so nothing else changes the model
 * between the picture taken here and the change.
 */
export class AdminChange {
  readonly #model: ModelRecord
  readonly #x: AdminChangeContext
  readonly #active: LoadedVersion | undefined
  readonly #retained: readonly LoadedVersion[]
  readonly #activations: readonly number[]
  readonly #unloaded: boolean
  readonly #records = new Map<VersionRecord, RecordBefore>()
  readonly #leaving: LoadedVersion[] = []
  readonly #afterCommit: (() => void)[] = []
  #recorded: Promise<void> | undefined

  constructor(model: ModelRecord, context: AdminChangeContext) {
    this.#model = model
    this.#x = context
    this.#active = model.active
    this.#retained = [...model.retained]
    this.#activations = [...model.activations]
    this.#unloaded = model.unloaded
    for (const r of model.versions.values())
      this.#records.set(r, { loaded: r.loaded, rolledBack: r.rolledBack, state: r.state })
  }

  /** Takes `version` out of service once the change is recorded; until then it can come back. */
  retire(version: LoadedVersion): void {
    this.#leaving.push(version)
  }

  /** Runs `effect` once the change is recorded: an undone change leaves no history entry. */
  afterCommit(effect: () => void): void {
    this.#afterCommit.push(effect)
  }

  /** The change is complete in memory: its write starts now (the same tick as its last step). */
  record(): void {
    this.#recorded ??= this.#x.commit(() => this.#undo())
  }

  /** Resolves once state.json records the change; else the change has been undone, and this throws. */
  async committed(): Promise<void> {
    this.record()
    try {
      await this.#recorded
    } catch (e) {
      const served = this.#active
        ? `version ${this.#active.version} serves as before`
        : 'nothing serves, as before'
      throw new StateWriteFailedError(
        `the change was not made: the state file could not be written (${(e as Error).message}); model '${this.#model.name}': ${served}`,
        { cause: e, details: { error: (e as NodeJS.ErrnoException).code ?? (e as Error).message } },
      )
    }
    for (const v of this.#leaving) v.retire() // released once their last requests end
    for (const effect of this.#afterCommit) effect()
  }

  /** Runs inside the failed write, before any other write starts (StatePersister.commit). */
  #undo(): void {
    const { registry, metrics, logger } = this.#x
    const model = this.#model
    const inService = [model.active, ...model.retained]
    if (this.#active) registry.activate(model, this.#active)
    else registry.deactivate(model) // one assignment either way: no request sees a half-undo
    model.retained = [...this.#retained]
    model.activations = [...this.#activations]
    model.unloaded = this.#unloaded
    for (const [record, before] of this.#records) {
      record.loaded = before.loaded
      record.rolledBack = before.rolledBack
      if (record.state !== before.state) record.state = this.#x.restingState(record)
    }
    // A session the change loaded (a cold target) serves nobody now.
    const kept = new Set([this.#active, ...this.#retained])
    for (const v of inService) if (v && !kept.has(v)) v.retire()
    metrics.activeVersion.set({ model: model.name }, this.#active?.version ?? 0)
    metrics.loadedVersions.set(
      { model: model.name },
      (this.#active ? 1 : 0) + this.#retained.length,
    )
    logger.error('admin_change_undone', {
      model: model.name,
      serving: this.#active?.version ?? null,
      reason: 'the state file could not be written',
    })
  }
}
