import { ConflictError, GateFailedError, VersionNotFoundError } from '../../errors.js'
import { ConfigFileError } from '../../repository/model-config.js'
import {
  readVersionBytes,
  VersionReadError,
  type VersionBytes,
} from '../../repository/read-version.js'
import { readSmokeSet, type SmokeSet } from '../../repository/smoke-file.js'
import { AdminChange } from './admin-change.js'
import type { GateReport, StageResult } from '../gate/gate-types.js'
import { roundMs, roundStages } from '../gate/stage-results.js'
import type { History } from '../state/history.js'
import type { LifecycleDeps } from '../lifecycle-context.js'
import type { RuleResult } from '../promotion/probation-rules.js'
import type { ModelPipeline } from '../promotion/model-pipeline.js'
import type { ModelVersions } from '../versions/model-versions.js'
import type { VersionView } from '../versions/version-state.js'
import { previousActivation } from '../versions/version-policy.js'

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

export interface AdminContext {
  readonly deps: LifecycleDeps
  readonly root: string
  readonly history: History
  readonly pipeline: (name: string) => ModelPipeline
  /** StatePersister.commit: writes the state for a change just made, undoing it if that fails. */
  readonly commit: (undo: () => void) => Promise<void>
}

/**
 * Rollback and promotion, as the admin API asks for them. A warm rollback is a
 * pointer swap on the spot; anything that needs a gate runs in the model's pipeline, in turn.
 * Answers come once state.json records the change: a crash right after cannot undo it. A change
 * that state.json cannot record (a full or read-only disk) is undone and answered state_write_failed.
 */
export class AdminOperations {
  readonly #x: AdminContext

  constructor(context: AdminContext) {
    this.#x = context
  }

  /** Rollback: a pointer swap to a retained version, else load and gate it first. */
  async rollback(
    name: string,
    o: {
      version?: number | undefined
      reason?: string | undefined
      /** An automatic rollback: the probation rule breached (`version` is the previous version). */
      auto?: RuleResult
      /** Only if this version still serves (a probation judged it; another may have come since). */
      from?: number
    },
  ): Promise<RollbackResult> {
    const pipeline = this.#x.pipeline(name)
    const model = pipeline.versions
    const reason = o.reason ?? 'manual rollback'
    const from = model.active
    if (!from) throw new ConflictError(`model '${name}' has no active version to roll back from`)
    if (o.from !== undefined && from.version !== o.from)
      throw new ConflictError(`version ${o.from} of model '${name}' no longer serves`)
    const target = o.version ?? previousActivation(model)
    if (target === undefined)
      throw new ConflictError(
        `model '${name}' has no earlier version to roll back to; name one with {"version": N}`,
      )
    if (target === from.version)
      throw new ConflictError(`version ${target} of model '${name}' is already active`)
    const record = this.#requireVersion(model, target)
    const retained = model.retained.find((v) => v.version === target)
    if (retained) {
      // Warm: no queue, no I/O. The old version finishes its in-flight requests, then is released.
      const change = this.#begin(model)
      const swap = model.swap(record, retained, {
        trigger: 'rollback',
        rollbackReason: reason,
        change,
      })
      return this.#rolledBack(change, model, from.version, target, true, swap.ms, reason, o.auto)
    }
    return pipeline.exclusive(async () => {
      const started = performance.now()
      const current = model.active
      if (!current)
        throw new ConflictError(`model '${name}' has no active version to roll back from`)
      if (current.version === target)
        throw new ConflictError(`version ${target} of model '${name}' is already active`)
      const bytes = await this.#readForAdmin(model, record)
      if (record.verdict?.kind === 'rejected' && record.verdict.sha256 === bytes.sha256) {
        throw new ConflictError(
          `version ${target} was rejected by its gate (${record.verdict.reason}: ${record.verdict.message}); promote it with "force" to serve it anyway`,
        )
      }
      // A version that served before may have another signature (the contract moved on); one that
      // never served is held to the contract like any candidate.
      const gated = await this.#gateForAdmin(
        pipeline,
        record,
        bytes,
        { skipSignature: model.activations.includes(target) },
        'rollback',
      )
      let change: AdminChange | undefined
      const swapped = await pipeline.promoter.serve(record, bytes, {
        trigger: 'rollback',
        gated,
        rollbackReason: reason,
        begin: () => (change = this.#begin(model)),
      })
      if (!swapped || !change)
        throw new GateFailedError(`version ${target} could not be loaded for serving`, {
          details: { stages: record.gate?.stages },
        })
      const result = await this.#rolledBack(
        change,
        model,
        current.version,
        target,
        false,
        performance.now() - started,
        reason,
        o.auto,
      )
      return { ...result, stages: roundStages(record.gate?.stages ?? []) }
    })
  }

  /** Explicit promotion: gated unless retained (it served and is loaded) or forced. */
  promote(
    name: string,
    o: {
      version: number
      force?: boolean | undefined
      skipProbation?: boolean | undefined
    },
  ): Promise<PromoteResult> {
    const pipeline = this.#x.pipeline(name)
    const model = pipeline.versions
    const record = this.#requireVersion(model, o.version)
    return pipeline.exclusive(async () => {
      const started = performance.now()
      const from = model.active?.version ?? null
      if (record.loaded && record.loaded === model.active)
        throw new ConflictError(`version ${o.version} of model '${name}' is already active`)
      let change: AdminChange | undefined
      const begin = () => (change = this.#begin(model))
      // Loaded already (retained, or the candidate of a rollout): a pointer swap.
      const retained =
        model.retained.find((v) => v.version === o.version) ??
        (model.rollout?.version === o.version ? model.rollout.candidate : undefined)
      if (retained) {
        const swap = model.swap(record, retained, {
          trigger: 'admin',
          explicit: true,
          ...(o.skipProbation && { skipProbation: true }),
          change: begin(),
        })
        await change!.committed()
        return { model: name, from, to: o.version, warm: true, ms: roundMs(swap.ms) }
      }
      const bytes = await this.#readForAdmin(model, record)
      const gated = await this.#gateForAdmin(
        pipeline,
        record,
        bytes,
        { force: o.force === true },
        'admin',
      )
      const swapped = await pipeline.promoter.serve(record, bytes, {
        trigger: 'admin',
        gated,
        explicit: true,
        ...(o.skipProbation && { skipProbation: true }),
        begin,
      })
      if (!swapped || !change) {
        throw new GateFailedError(`version ${o.version} could not be loaded for serving`, {
          details: { stages: record.gate?.stages },
        })
      }
      const ms = performance.now() - started
      await change.committed()
      return {
        model: name,
        from,
        to: o.version,
        warm: false,
        ms: roundMs(ms),
        stages: roundStages(record.gate?.stages ?? []),
      }
    })
  }

  #requireVersion(model: ModelVersions, version: number): VersionView {
    const record = model.versions.get(version)
    if (!record) throw new VersionNotFoundError(`model '${model.name}' has no version ${version}`)
    return record
  }

  async #readForAdmin(model: ModelVersions, record: VersionView): Promise<VersionBytes> {
    if (!record.onDisk)
      throw new ConflictError(
        `version ${record.version} of model '${model.name}' is not loaded and its file is missing`,
      )
    try {
      return await readVersionBytes(this.#x.root, record.source, this.#x.deps.options.maxModelBytes)
    } catch (e) {
      if (e instanceof VersionReadError) throw new ConflictError(e.message)
      throw e
    }
  }

  /** Gates a version for an admin operation; a failure is recorded and answered with 422. */
  async #gateForAdmin(
    pipeline: ModelPipeline,
    record: VersionView,
    bytes: VersionBytes,
    o: { force?: boolean; skipSignature?: boolean },
    trigger: 'admin' | 'rollback',
  ): Promise<{ report: GateReport; smoke: SmokeSet }> {
    const model = pipeline.versions
    let smoke: SmokeSet
    try {
      smoke = await readSmokeSet(this.#x.root, model.dir, record.source.dir)
    } catch (e) {
      if (e instanceof ConfigFileError)
        throw new ConflictError(`cannot gate version ${record.version}: ${e.message}`)
      throw e
    }
    const outcome = await pipeline.promoter.gate(record, bytes, smoke, o)
    if (outcome.kind === 'cancelled') throw new ConflictError('the server is shutting down')
    const report = outcome.report
    if (!report.passed) {
      const failed = report.stages.find((s) => s.status === 'failed')!
      model.rejected(record, {
        sha256: bytes.sha256,
        fingerprint: undefined,
        failed,
        trigger,
        report,
      })
      throw new GateFailedError(
        `version ${record.version} failed its gate at '${failed.stage}': ${failed.message}`,
        {
          details: { stages: report.stages },
        },
      )
    }
    return { report, smoke }
  }

  /** An admin change begins: right before its swap, with no await in between (see AdminChange). */
  #begin(model: ModelVersions): AdminChange {
    return new AdminChange(model, { history: this.#x.history, commit: this.#x.commit })
  }

  async #rolledBack(
    change: AdminChange,
    model: ModelVersions,
    from: number,
    to: number,
    warm: boolean,
    ms: number,
    reason: string,
    auto: RuleResult | undefined,
  ): Promise<RollbackResult> {
    const { metrics, logger } = this.#x.deps
    // Answered only once state.json says so: a crash right after must not bring `from` back.
    await change.committed()
    metrics.rollbacks.inc({
      model: model.name,
      trigger: auto ? 'auto' : 'manual',
      warm: String(warm),
    })
    const breach = auto && {
      rule: auto.rule,
      observed: auto.observed,
      limit: auto.limit,
      sample: auto.sample,
    }
    if (auto) metrics.probations.inc({ model: model.name, result: 'rolled_back' })
    logger[auto ? 'warn' : 'info'](auto ? 'auto_rolled_back' : 'rolled_back', {
      model: model.name,
      from,
      to,
      warm,
      ms,
      reason,
      ...breach,
    })
    const fromRecord = model.versions.get(from)
    await this.#x.history.append({
      model: model.name,
      version: from,
      sha256: fromRecord?.rolledBack?.sha256,
      event: auto ? 'auto_rolled_back' : 'rolled_back',
      trigger: auto ? `auto_rollback:${auto.rule}` : 'admin',
      to,
      reason,
      warm,
      ms,
      ...breach,
    })
    return { model: model.name, from, to, warm, ms: roundMs(ms), reason }
  }
}
