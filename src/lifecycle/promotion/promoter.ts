import type { VersionBytes } from '../../repository/read-version.js'
import type { SmokeSet } from '../../repository/smoke-file.js'
import type { GateOutcome } from '../gate/gate-runner.js'
import type { Contract, GateJob, GateReport } from '../gate/gate-types.js'
import { smokeFeeds } from '../gate/warmup.js'
import type { LifecycleContext } from '../lifecycle-context.js'
import { EngineCreationError, ensureFits, loadForServing } from '../serving/load-for-serving.js'
import type { ModelVersions } from '../versions/model-versions.js'
import type { Outbox, PromotionTrigger, Served, SwapResult } from '../versions/transitions.js'
import { chooseExecution } from '../serving/serving-engine.js'
import type { LoadedVersion } from '../versions/loaded-version.js'
import type { Verdict, VersionView } from '../versions/version-state.js'

export interface ServeOptions {
  readonly trigger: PromotionTrigger
  /** The gate run that passed these bytes just now; without it, a recorded verdict vouches for them. */
  readonly gated?: { readonly report: GateReport; readonly smoke: SmokeSet }
  /** Rolls back to it: the version it replaces is marked rolled back. */
  readonly rollbackReason?: string
  /** An admin promotion (serves an unloaded model again, clears a rollback mark). */
  readonly explicit?: boolean
  readonly skipProbation?: boolean
  /** Begins the admin change the swap is part of: called right before it, with no await between. */
  readonly begin?: () => Outbox
  /** A follower says itself whether the version serves or is rolled out, as state.json records it. */
  readonly as?: 'active' | 'rollout'
}

/**
 * The one path by which a version is gated and served, whoever asks: a pass over the model's
 * folder (ModelPipeline), an admin promotion, a cold rollback, a restart. `gate` runs the version's
 * gate in the gate process; `serve` creates and warms its sessions and swaps it in. What the caller
 * decides is only what to do when a step says no.
 */
export class Promoter {
  readonly #ctx: LifecycleContext
  readonly #versions: ModelVersions

  constructor(ctx: LifecycleContext, versions: ModelVersions) {
    this.#ctx = ctx
    this.#versions = versions
  }

  /** Runs the version's gate on `bytes` (the version is `validating` meanwhile). */
  gate(
    view: VersionView,
    bytes: VersionBytes,
    smoke: SmokeSet,
    o: { force?: boolean; skipSignature?: boolean; signal?: AbortSignal } = {},
  ): Promise<GateOutcome> {
    this.#versions.validating(view)
    return this.#ctx.gates.run(this.#job(view, bytes.sha256, smoke, o), {
      timeoutMs: this.#versions.config.gateTimeoutSeconds * 1000,
      ...(o.signal && { signal: o.signal }),
    })
  }

  /**
   * Refuses a version whose sessions would not fit in the memory left, before its file is read
   * (InsufficientMemoryError; nothing changes).
   */
  ensureFits(view: VersionView, size: number): void {
    const { execution, maxMemoryBytes } = this.#ctx.options
    ensureFits(this.#target(view), size, { execution, maxMemoryBytes })
  }

  /**
   * Serves bytes that passed their gate (just now, `gated`, or before: the recorded verdict):
   * creates and warms the sessions, then swaps the version in. Undefined when its engine cannot be
   * created (recorded as a rejection at `load`) or the server closes meanwhile. Throws
   * InsufficientMemoryError, before anything is created, when it would not fit.
   */
  async serve(
    view: VersionView,
    bytes: VersionBytes,
    o: ServeOptions,
  ): Promise<SwapResult | undefined> {
    const ready = await this.#ready(view, bytes, o)
    if (!ready) return undefined
    const versions = this.#versions
    if (this.#rollsOut(view, o)) {
      versions.rolloutStarted(view, ready.loaded, {
        trigger: o.trigger,
        served: ready.served,
        gateMs: o.gated?.report.ms,
        unverified: ready.served.verdict.unverified === true,
      })
      return { from: versions.active?.version, to: view.version, ms: 0, rollout: true }
    }
    return versions.swap(view, ready.loaded, {
      trigger: o.trigger,
      served: ready.served,
      stages: ready.served.gate.stages,
      // A rollback is logged by the admin operation that asked for it.
      unverified: o.rollbackReason === undefined && ready.served.verdict.unverified === true,
      ...(o.gated ? { gateMs: o.gated.report.ms } : { restored: true }),
      ...(o.rollbackReason !== undefined && { rollbackReason: o.rollbackReason }),
      ...(o.explicit && { explicit: true }),
      ...(o.skipProbation && { skipProbation: true }),
      change: o.begin?.(),
    })
  }

  /**
   * A version the pipeline found is rolled out (model.json `rollout`) rather than swapped in, when
   * there is an active version to compare it with. Rollbacks and admin promotions swap at once.
   */
  #rollsOut(view: VersionView, o: ServeOptions): boolean {
    if (o.as !== undefined) return o.as === 'rollout'
    const active = this.#versions.active
    return (
      this.#versions.config.rollout.mode !== 'immediate' &&
      active !== undefined &&
      active.version !== view.version &&
      o.rollbackReason === undefined &&
      o.explicit !== true &&
      o.begin === undefined
    )
  }

  /** At start: a version retained before the restart is loaded into the window again, ungated. */
  async retain(view: VersionView, bytes: VersionBytes): Promise<boolean> {
    const ready = await this.#ready(view, bytes, { trigger: 'startup' })
    if (ready) this.#versions.retainedAgain(view, ready.loaded, ready.served)
    return ready !== undefined
  }

  async #ready(
    view: VersionView,
    bytes: VersionBytes,
    o: Pick<ServeOptions, 'trigger' | 'gated'>,
  ): Promise<{ loaded: LoadedVersion; served: Served } | undefined> {
    const versions = this.#versions
    const report = o.gated?.report
    const target = this.#target(view)
    const recorded = view.verdict?.sha256 === bytes.sha256 ? view.verdict : undefined
    const runMs = report ? report.runMs : recorded?.runMs
    const choice = chooseExecution(target.config.execution, this.#ctx.options.execution, {
      bytes: bytes.bytes,
      runMs,
    })
    try {
      const { execution, maxMemoryBytes } = this.#ctx.options
      ensureFits(target, bytes.bytes.length, { execution, maxMemoryBytes }, choice)
    } catch (e) {
      // Not loaded, nothing changed: an admin call answers 503, the pipeline defers the version.
      versions.rest(view)
      throw e
    }
    versions.warming(view)
    const feeds = o.gated ? smokeFeeds(o.gated.smoke, o.gated.report.signature) : []
    let ready
    try {
      ready = await loadForServing(this.#ctx, target, bytes, choice, feeds, o.trigger)
    } catch (e) {
      if (!(e instanceof EngineCreationError)) throw e
      versions.rejected(view, {
        sha256: bytes.sha256,
        fingerprint: view.verdictFingerprint,
        failed: {
          stage: 'load',
          status: 'failed',
          ms: 0,
          reason: 'invalid_model',
          message: e.message,
        },
        trigger: o.trigger,
        report,
      })
      return undefined
    }
    if (!ready) return undefined
    const unverified = report ? report.unverified : view.verdict?.unverified
    const gate: GateReport = {
      ...(report ?? {
        passed: true,
        unverified: unverified === true,
        warnings: [],
        signature: ready.engine.signature,
        ms: 0,
      }),
      stages: [...(report?.stages ?? []), ready.warm],
    }
    const verdict: Verdict = {
      kind: 'passed',
      sha256: bytes.sha256,
      unverified,
      at: report ? new Date().toISOString() : (view.verdict?.at ?? new Date().toISOString()),
      ...(runMs !== undefined && { runMs }),
    }
    return { loaded: ready.loaded, served: { gate, verdict } }
  }

  #target(view: VersionView) {
    return { model: this.#versions.name, version: view.version, config: this.#versions.config }
  }

  #job(
    view: VersionView,
    sha256: string,
    smoke: SmokeSet,
    o: { force?: boolean; skipSignature?: boolean },
  ): GateJob {
    const model = this.#versions
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
      version: view.version,
      candidate: { file: view.source.file, sha256 },
      root: this.#ctx.root,
      sessionOptions: config.session,
      smoke,
      requireSmoke: this.#ctx.options.requireSmoke || config.requireSmoke === true,
      contract,
      allowSignatureChange: config.allowSignatureChange,
      latency: config.latency,
      agreement: config.agreement,
      reference:
        active && activeRecord?.onDisk && active.version !== view.version
          ? { file: activeRecord.source.file, sha256: active.sha256, version: active.version }
          : undefined,
      ...(o.force && { force: true }),
      ...(o.skipSignature && { skipSignature: true }),
      // Timed at the largest batch it may run: what decides whether it is worth a thread.
      profileBatchSize: config.batching.enabled === false ? 1 : config.batching.maxBatchSize,
    }
  }
}
