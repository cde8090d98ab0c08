import { windowSizes } from '../../metrics/live-figures.js'
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../../repository/model-config.js'
import type { ModelSource, VersionSource } from '../../repository/scanner.js'
import type { FileFingerprint } from '../../repository/version-file.js'
import type { GateReport, StageResult } from '../gate/gate-types.js'
import { roundMs } from '../gate/stage-results.js'
import type { HistoryEntry } from '../state/history.js'
import type { LoadedVersion } from './loaded-version.js'
import type { RuleResult } from '../promotion/probation-rules.js'
import type { PersistedModel } from '../state/state-store.js'
import { emptyTally, rolloutState, rolloutStep } from './rollout-state.js'
import {
  newVersionRecord,
  type Effects,
  type Outbox,
  type PromotionTrigger,
  type Served,
  type SwapOptions,
  type SwapResult,
  type VersionRecord,
  type VersionsContext,
  type VersionsSnapshot,
} from './transitions.js'
import type {
  ModelView,
  Probation,
  Rollout,
  RolloutSettings,
  Seen,
  VersionState,
  VersionView,
} from './version-state.js'
import { inShare } from './traffic-share.js'
import { withActivation, withoutActivation } from './version-policy.js'

/** The state a version settles in when it stops moving: derived from what it holds. */
const AT_REST = Symbol('at rest')

/**
 * The one owner of a model's versions (the states and their transitions: docs/architecture.md).
 * Its records are private: everything else reads them through `ModelView`, and every change goes
 * through one of its methods, each a transition that writes the state together with what goes
 * along with it (metrics, log line, history entry, state.json) in `#move`. The swap is one
 * assignment of `#active`; everything slow happens before it, elsewhere.
 */
export class ModelVersions implements ModelView {
  readonly name: string
  readonly dir: string
  readonly #ctx: VersionsContext
  readonly #records = new Map<number, VersionRecord>()
  #config: ModelConfig = DEFAULT_MODEL_CONFIG
  #configError: string | undefined
  #active: LoadedVersion | undefined
  #retained: LoadedVersion[] = []
  #activations: number[] = []
  #unloaded = false
  #refused: ModelView['refused'] = []
  #probation: Probation | undefined
  #rollout: Rollout | undefined
  /** A rollout state.json recorded: started again if that version, with those bytes, is considered. */
  #resumable: { readonly version: number; readonly sha256: string } | undefined
  readonly #now: Outbox

  constructor(source: ModelSource, ctx: VersionsContext) {
    this.name = source.name
    this.dir = source.dir
    this.#ctx = ctx
    for (const v of source.versions) this.#records.set(v.version, newVersionRecord(v))
    this.#now = {
      history: (entry) => void ctx.history.append(entry),
      retire: (v) => v.retire(),
      persist: () => ctx.persist(),
    }
  }

  get config(): ModelConfig {
    return this.#config
  }
  get configError(): string | undefined {
    return this.#configError
  }
  get versions(): ReadonlyMap<number, VersionView> {
    return this.#records
  }
  get active(): LoadedVersion | undefined {
    return this.#active
  }
  get retained(): readonly LoadedVersion[] {
    return this.#retained
  }
  get activations(): readonly number[] {
    return this.#activations
  }
  get unloaded(): boolean {
    return this.#unloaded
  }
  get refused(): ModelView['refused'] {
    return this.#refused
  }
  get probation(): Probation | undefined {
    return this.#probation
  }
  get rollout(): Rollout | undefined {
    return this.#rollout
  }

  route(sticky: string | undefined): LoadedVersion | undefined {
    const r = this.#rollout
    if (r?.mode === 'canary' && r.against === this.#active?.version && inShare(sticky, r.percent))
      return r.candidate
    return this.#active
  }

  // --- model.json and the folder -------------------------------------------------------------

  configured(config: ModelConfig): void {
    this.#config = config
    this.#configError = undefined
  }

  configFailed(message: string): void {
    this.#configError = message
  }

  /** Brings the records in line with a listing of the folder: new versions, moved files, deleted files. */
  listed(sources: readonly VersionSource[], refused: ModelView['refused']): void {
    this.#refused = refused
    const present = new Set<number>()
    for (const source of sources) {
      present.add(source.version)
      const record = this.#records.get(source.version)
      if (!record) {
        this.#records.set(source.version, newVersionRecord(source))
        continue
      }
      record.source = source
      if (!record.onDisk) {
        record.onDisk = true
        if (record.state.status === 'missing') this.#move(record, AT_REST)
      }
    }
    for (const record of this.#records.values()) {
      if (present.has(record.version) || !record.onDisk) continue
      record.onDisk = false
      record.seen = undefined
      const loaded = record.loaded !== undefined
      // Its gate report lives on in history.jsonl; a server that ships versions all day and
      // prunes old folders should not hold every report in memory.
      if (!loaded) record.gate = undefined
      this.#move(record, loaded ? record.state : { status: 'missing' }, {
        log: ['warn', 'version_missing', { loaded }],
        history: { event: 'missing', sha256: record.loaded?.sha256 ?? record.verdict?.sha256 },
        persist: true,
      })
    }
  }

  /** The file as seen now; the time it was first seen so stays unless it changed. */
  seen(view: VersionView, fingerprint: FileFingerprint, same: boolean): Seen {
    const record = this.#own(view)
    if (!same)
      record.seen = { fingerprint, sinceMs: Date.now(), changed: record.seen !== undefined }
    return record.seen!
  }

  // --- deciding --------------------------------------------------------------------------------

  /** Not decided yet, and `note` says why (its file settling, memory, a broken smoke.json, …). */
  waiting(
    view: VersionView,
    note: string,
    o: { waiting?: { reason: 'invalid_smoke_file'; message: string }; unlessLoaded?: boolean } = {},
  ): void {
    const record = this.#own(view)
    if (o.unlessLoaded && record.loaded) return
    this.#move(record, {
      status: 'discovered',
      note,
      ...(o.waiting && { waiting: o.waiting }),
    })
  }

  /** A file refused unread before, unchanged since: it shows that refusal again (unless it serves). */
  refusedAgain(view: VersionView, state: VersionState): void {
    const record = this.#own(view)
    if (!record.loaded) this.#move(record, state)
  }

  /** Its bytes match their sidecar now: a checksum mismatch recorded before no longer holds. */
  checksumFixed(view: VersionView): void {
    const record = this.#own(view)
    if (record.verdict?.kind === 'rejected' && record.verdict.reason === 'checksum_mismatch')
      record.verdict = undefined
  }

  /** The verdict is about the file as it is now (`fingerprint`): unchanged, it is not read again. */
  vouched(view: VersionView, fingerprint: FileFingerprint | undefined): void {
    this.#own(view).verdictFingerprint = fingerprint
  }

  /** Nothing to do with it now: it rests in the state its record says. */
  rest(view: VersionView): void {
    this.#move(this.#own(view), AT_REST)
  }

  validating(view: VersionView): void {
    this.#move(this.#own(view), { status: 'validating' })
  }

  warming(view: VersionView): void {
    this.#move(this.#own(view), { status: 'warming' })
  }

  /** A newer version arrived while this one was read or gated: it waits, and the newer goes first. */
  superseded(view: VersionView, sha256: string, trigger: PromotionTrigger): void {
    this.#move(
      this.#own(view),
      { status: 'discovered', note: 'superseded by a newer version' },
      {
        count: (m, labels) => m.promotions.inc({ ...labels, result: 'superseded' }),
        history: { event: 'superseded', sha256, trigger },
      },
    )
  }

  /**
   * Refused: by its gate, its checksum, or unread. The verdict hangs on the bytes (`sha256`) when
   * they were read. A replacement of the serving version's file that fails leaves the old bytes
   * serving, in their state.
   */
  rejected(
    view: VersionView,
    o: {
      sha256: string | undefined
      fingerprint: FileFingerprint | undefined
      failed: StageResult
      trigger: PromotionTrigger
      report?: GateReport | undefined
    },
  ): void {
    const record = this.#own(view)
    const { failed, report } = o
    const reason = failed.reason ?? 'rejected'
    const message = failed.message ?? ''
    if (o.sha256) {
      record.verdict = {
        kind: 'rejected',
        sha256: o.sha256,
        stage: failed.stage,
        reason,
        message,
        at: new Date().toISOString(),
      }
      record.verdictFingerprint = o.fingerprint
    }
    record.gate = report ?? {
      passed: false,
      unverified: false,
      stages: [failed],
      warnings: [],
      signature: undefined,
      ms: failed.ms,
    }
    this.#move(
      record,
      record.loaded ? AT_REST : { status: 'rejected', stage: failed.stage, reason, message },
      {
        count: (m, labels) => {
          m.rejections.inc({ ...labels, stage: failed.stage })
          m.promotions.inc({ ...labels, result: 'rejected' })
          if (report) m.gateDuration.observe({ ...labels, result: 'rejected' }, report.ms / 1000)
        },
        log: ['warn', 'version_rejected', { stage: failed.stage, reason, error: message }],
        history: {
          sha256: o.sha256,
          event: 'rejected',
          trigger: o.trigger,
          reason,
          message,
          stages: report?.stages ?? [failed],
        },
        persist: true,
      },
    )
  }

  // --- serving ---------------------------------------------------------------------------------

  /**
   * Makes `next` the serving version. The swap is one assignment; then the replaced version is
   * retained (or, after a rollback, released), and versions leaving the retained window are
   * released once their last request ends.
   */
  swap(view: VersionView, next: LoadedVersion, o: SwapOptions): SwapResult {
    const record = this.#own(view)
    const out = o.change ?? this.#now
    if (o.explicit) {
      this.#unloaded = false // an explicit promotion serves the model again
      record.rolledBack = undefined // and brings back a rolled-back version
    }
    if (o.served) {
      record.gate = o.served.gate
      record.verdict = o.served.verdict
    }
    const t = performance.now()
    const previous = this.#active
    this.#active = next // one assignment: no request sees a half-swap
    const ms = performance.now() - t // the swap itself; what follows is bookkeeping
    // Whatever was being rolled out was judged against the version that served: it ends here.
    const rollout = this.#rollout
    if (rollout) {
      this.#rollout = undefined
      if (rollout.candidate !== next)
        this.#rolloutOver(rollout, `version ${next.version} became active`, out)
    }
    record.loaded = next
    this.#retained = this.#retained.filter((v) => v !== next)
    if (previous && previous !== next) {
      const prevRecord = this.#records.get(previous.version)
      if (o.rollbackReason !== undefined || previous.version === next.version) {
        this.#takeOut(previous, out)
        if (o.rollbackReason !== undefined && prevRecord) {
          prevRecord.rolledBack = {
            sha256: previous.sha256,
            reason: o.rollbackReason,
            at: new Date().toISOString(),
          }
          this.#activations = withoutActivation(this.#activations, previous.version)
        }
      } else {
        this.#retained.unshift(previous)
      }
      if (prevRecord && prevRecord !== record) this.#move(prevRecord, AT_REST)
    }
    this.#activations = withActivation(this.#activations, next.version)
    this.#trimRetained(out)
    const from = previous && previous !== next ? previous.version : undefined
    const event =
      o.rollbackReason !== undefined ? 'rolled_back' : o.restored ? 'restored' : 'promoted'
    this.#probation = this.#probationAfter(event, next, previous, o)
    this.#move(
      record,
      { status: 'active' },
      {
        count: (m, labels) => {
          this.#publishLoaded()
          m.swapDuration.observe(labels, ms / 1000)
          // A follower's swap carries out the gatekeeper's promotion, counted there once.
          if (o.rollbackReason !== undefined || o.trigger === 'replica') return
          m.promotions.inc({ ...labels, result: 'promoted' })
          if (o.gateMs !== undefined)
            m.gateDuration.observe({ ...labels, result: 'passed' }, o.gateMs / 1000)
        },
        log: [
          'info',
          `version_${event === 'rolled_back' ? 'rolled_back_to' : event}`,
          {
            from,
            sha256: next.sha256,
            trigger: o.trigger,
            swapMs: roundMs(ms),
            ...(o.unverified && { unverified: true }),
          },
        ],
        // A rollback's entry is the caller's, once the change is recorded (AdminOperations).
        ...(event !== 'rolled_back' && {
          history: {
            sha256: next.sha256,
            event,
            trigger: o.trigger,
            from,
            stages: o.stages,
            ...(o.unverified && { unverified: true }),
            ...o.rollout,
          },
        }),
        outbox: out,
      },
    )
    // Said once, by the gatekeeper that served it: not again by every replica that follows it.
    if (o.unverified && this.#ctx.gatekeeper?.() !== false)
      this.#ctx.logger.warn('version_unverified', {
        model: this.name,
        version: next.version,
        reason: 'no smoke cases: only a synthesized input was checked',
      })
    out.persist()
    return { from, to: next.version, ms }
  }

  /** At start: a version that was retained before the restart is in the window again. */
  retainedAgain(view: VersionView, loaded: LoadedVersion, served: Served): void {
    const record = this.#own(view)
    record.gate = served.gate
    record.verdict = served.verdict
    record.loaded = loaded
    this.#retained.push(loaded)
    this.#move(record, { status: 'retained' }, { count: () => this.#publishLoaded() })
  }

  /**
   * Stops serving the model (V2 repository `unload`): its versions are released once their last
   * requests end, and nothing is promoted until `servedAgain`.
   */
  unloadedOnRequest(): void {
    this.#unloaded = true
    const leaving = [this.#active, ...this.#retained].filter((v) => v !== undefined)
    this.#active = undefined // one assignment, as in swap
    this.#retained = []
    const rollout = this.#rollout
    this.#rollout = undefined
    if (rollout) this.#rolloutOver(rollout, 'the model was unloaded', this.#now)
    for (const v of leaving) {
      const record = this.#takeOut(v, this.#now)
      if (record) this.#move(record, AT_REST)
    }
    // Versions evicted before are now unloaded on request too: nothing loads them until `load`.
    for (const record of this.#records.values())
      if (record.state.status === 'unloaded') this.#move(record, AT_REST)
    this.#ctx.metrics.activeVersion.set({ model: this.name }, 0)
    this.#ctx.metrics.loadedVersions.set({ model: this.name }, 0)
    this.#ctx.logger.info('model_unloaded', {
      model: this.name,
      versions: leaving.map((v) => v.version),
    })
    for (const v of leaving)
      this.#now.history({
        model: this.name,
        version: v.version,
        sha256: v.sha256,
        event: 'unloaded',
        trigger: 'admin',
        reason: 'unloaded on request',
      })
  }

  /** V2 `load`: versions unloaded on request are merely evicted now, and a pass may load them. */
  servedAgain(): void {
    this.#unloaded = false
    for (const record of this.#records.values())
      if (record.state.status === 'unloaded') this.#move(record, AT_REST)
  }

  /**
   * A follower: retained versions the gatekeeper no longer retains (nor serves) leave, released
   * after their last request. Nothing is recorded: the gatekeeper recorded it.
   */
  retainOnly(keep: ReadonlySet<string>): void {
    const kept = this.#retained.filter((v) => keep.has(`${v.version}:${v.sha256}`))
    if (kept.length === this.#retained.length) return
    const leaving = this.#retained.filter((v) => !kept.includes(v))
    this.#retained = kept
    for (const v of leaving) {
      const record = this.#takeOut(v, this.#now)
      if (record) this.#move(record, AT_REST)
    }
    this.#publishLoaded()
  }

  /** A follower: the gatekeeper's rollout ended without this version: its candidate leaves here too. */
  rolloutDropped(reason: string): void {
    const r = this.#rollout
    if (!r) return
    this.#rollout = undefined
    // Counted by the gatekeeper, whose rollout it was: here only the share goes back to 0.
    this.#rolloutOver(r, reason, this.#now, {
      count: (m, labels) => m.canaryPercent.set(labels, 0),
    })
  }

  /** At shutdown: every loaded version is released once its last request ends. */
  retireAll(): void {
    this.#active?.retire()
    for (const v of this.#retained) v.retire()
    this.#rollout?.candidate.retire()
  }

  // --- rollouts --------------------------------------------------------------------------------

  /** True when state.json recorded a rollout of these bytes: considered again, it is rolled out again. */
  resumesRollout(view: VersionView, sha256: string): boolean {
    const r = this.#resumable
    return r !== undefined && r.version === view.version && r.sha256 === sha256
  }

  /**
   * A version that passed its gate is loaded beside the active one instead of replacing it: it gets
   * a copy of requests (`shadow`) or the first step's share of them (`canary`). A rollout already
   * running for another version ends (the newer candidate goes first).
   */
  rolloutStarted(
    view: VersionView,
    candidate: LoadedVersion,
    o: {
      trigger: PromotionTrigger
      served: Served
      gateMs?: number | undefined
      unverified?: boolean
    },
  ): void {
    const record = this.#own(view)
    const active = this.#active
    const config = this.#config.rollout
    if (!active || config.mode === 'immediate')
      throw new Error(`no rollout for version ${view.version} of '${this.name}'`)
    const earlier = this.#rollout
    this.#rollout = undefined
    if (earlier)
      this.#rolloutOver(earlier, `version ${view.version} is rolled out instead`, this.#now)
    this.#resumable = undefined
    record.gate = o.served.gate
    record.verdict = o.served.verdict
    record.loaded = candidate
    const now = Date.now()
    this.#ctx.live.restart(this.name, candidate.version, windowSizes(this.#config.feedback.window))
    const percent = config.mode === 'canary' ? config.steps[0]! : 0
    this.#rollout = {
      version: candidate.version,
      sha256: candidate.sha256,
      mode: config.mode,
      settings: config,
      candidate,
      against: active.version,
      startedAt: new Date(now).toISOString(),
      ...this.#step(config, 0, now, active, candidate.version),
      shadow: emptyTally(),
    }
    this.#move(record, rolloutState(this.#rollout!), {
      count: (m, labels) => {
        this.#publishLoaded()
        m.canaryPercent.set(labels, percent)
        if (o.gateMs !== undefined)
          m.gateDuration.observe({ ...labels, result: 'passed' }, o.gateMs / 1000)
      },
      log: [
        'info',
        'rollout_started',
        { mode: config.mode, against: active.version, trigger: o.trigger, percent },
      ],
      history: {
        event: 'rollout_started',
        sha256: candidate.sha256,
        trigger: o.trigger,
        mode: config.mode,
        from: active.version,
        stages: o.served.gate.stages,
        ...(config.mode === 'canary' && { step: 0, percent }),
        ...(o.unverified && { unverified: true }),
      },
      persist: true,
    })
  }

  /** A canary's step passed: the next step's share, judged afresh from now. */
  rolloutStepped(rules: readonly RuleResult[]): void {
    const r = this.#rollout
    const config = r?.settings
    const active = this.#active
    if (!r || config?.mode !== 'canary' || !active) return
    const next = Math.min(r.step + 1, config.steps.length - 1)
    this.#rollout = { ...r, ...this.#step(config, next, Date.now(), active, r.version) }
    const record = this.#records.get(r.version)!
    this.#move(record, rolloutState(this.#rollout!), {
      count: (m, labels) => m.canaryPercent.set(labels, this.#rollout!.percent),
      log: ['info', 'rollout_step', { step: next, percent: this.#rollout.percent }],
      history: {
        event: 'rollout_step',
        sha256: r.sha256,
        step: next,
        percent: this.#rollout.percent,
        rules,
      },
      persist: true, // followers answer the new share
    })
  }

  /** The candidate passed its rollout: it becomes the active version (a probation follows). */
  rolloutPassed(figures: Pick<HistoryEntry, 'shadow' | 'rules'>): SwapResult | undefined {
    const r = this.#rollout
    if (!r) return undefined
    const record = this.#records.get(r.version)!
    this.#rolloutEnded(r, 'promoted')
    return this.swap(record, r.candidate, {
      trigger: 'rollout',
      rollout: { mode: r.mode, ...figures },
    })
  }

  /**
   * The rollout ends without a promotion: the candidate is released, and marked so that it is not
   * rolled out again by itself. `rejected`: it disagreed with the active version in the shadow
   * (a verdict on its bytes, like a gate's); `rolled_back`: a canary rule was breached, or an
   * operator aborted it.
   */
  rolloutFailed(
    how: 'rejected' | 'rolled_back',
    reason: string,
    o: { message: string; event: 'rejected' | 'rollout_failed' | 'rollout_aborted' } & Omit<
      HistoryEntry,
      'time' | 'model' | 'version' | 'event' | 'reason' | 'message'
    >,
  ): Rollout | undefined {
    const r = this.#rollout
    if (!r) return undefined
    this.#rollout = undefined
    const record = this.#records.get(r.version)
    const { message, event, ...details } = o
    if (record) {
      const at = new Date().toISOString()
      if (how === 'rejected')
        record.verdict = {
          kind: 'rejected',
          sha256: r.sha256,
          stage: r.mode,
          reason,
          message,
          at,
        }
      else record.rolledBack = { sha256: r.sha256, reason, at }
    }
    this.#rolloutOver(r, reason, this.#now, {
      log: ['warn', `rollout_${how}`, { reason, message }],
      history: { event, sha256: r.sha256, reason, message, mode: r.mode, ...details },
      count: (m, labels) => {
        this.#rolloutEnded(r, o.event === 'rollout_aborted' ? 'aborted' : how)
        if (how === 'rejected') {
          m.rejections.inc({ ...labels, stage: r.mode })
          m.promotions.inc({ ...labels, result: 'rejected' })
        }
      },
    })
    this.#now.persist()
    return r
  }

  // --- admin changes and restarts --------------------------------------------------------------

  snapshot(): VersionsSnapshot {
    const records = new Map<VersionRecord, Pick<VersionRecord, 'loaded' | 'rolledBack' | 'state'>>()
    for (const r of this.#records.values())
      records.set(r, { loaded: r.loaded, rolledBack: r.rolledBack, state: r.state })
    return {
      active: this.#active,
      retained: [...this.#retained],
      activations: [...this.#activations],
      unloaded: this.#unloaded,
      probation: this.#probation,
      rollout: this.#rollout,
      records,
    }
  }

  /**
   * Puts the model back as it was at `before` (an admin change state.json could not record): the
   * version that served then serves again, and a session the change loaded is released.
   */
  revert(before: VersionsSnapshot): void {
    const inService = [this.#active, ...this.#retained, this.#rollout?.candidate]
    this.#active = before.active // one assignment: no request sees a half-undo
    this.#retained = [...before.retained]
    this.#activations = [...before.activations]
    this.#unloaded = before.unloaded
    this.#probation = before.probation
    this.#rollout = before.rollout
    for (const [record, was] of before.records) {
      record.loaded = was.loaded
      record.rolledBack = was.rolledBack
      if (record.state !== was.state) this.#move(record, AT_REST)
    }
    const kept = new Set([before.active, ...before.retained, before.rollout?.candidate])
    for (const v of inService) if (v && !kept.has(v)) v.retire()
    this.#ctx.metrics.activeVersion.set({ model: this.name }, before.active?.version ?? 0)
    this.#publishLoaded()
    this.#ctx.logger.error('admin_change_undone', {
      model: this.name,
      serving: before.active?.version ?? null,
      reason: 'the state file could not be written',
    })
  }

  /** At start: the verdicts, rollback marks and activations state.json recorded. */
  recorded(persisted: PersistedModel): void {
    for (const [key, p] of Object.entries(persisted.versions)) {
      const record = this.#records.get(Number(key))
      if (!record) continue
      record.verdict = {
        kind: p.verdict,
        sha256: p.sha256,
        unverified: p.unverified,
        stage: p.stage,
        reason: p.reason,
        message: p.message,
        at: p.at,
        runMs: p.runMs,
      }
      // A follower takes the marks back on every change of state.json: one lifted there goes here.
      record.rolledBack = p.rolledBack
        ? { sha256: p.sha256, reason: p.rolledBack.reason, at: p.rolledBack.at }
        : undefined
      this.#move(record, AT_REST)
    }
    this.#activations = persisted.activations.filter((v) => this.#records.has(v))
    // Resumed if that version is restored as the active one (see #probationAfter).
    this.#probation = persisted.probation
    this.#resumable = persisted.rollout
  }

  /**
   * The probation ran its course without a breach: `rules` as they stood at the end, `insufficient`
   * when one never had its sample.
   */
  probationPassed(rules: readonly RuleResult[], insufficient: boolean): void {
    const p = this.#probation
    if (!p) return
    this.#probation = undefined
    this.#ctx.metrics.probations.inc({ model: this.name, result: 'passed' })
    this.#ctx.logger.info('probation_passed', {
      model: this.name,
      version: p.version,
      ...(insufficient && { insufficient: true }),
    })
    this.#now.history({
      model: this.name,
      version: p.version,
      sha256: p.sha256,
      event: 'probation_passed',
      rules,
      ...(insufficient && { insufficient: true }),
    })
    this.#now.persist()
  }

  /**
   * A rule was breached but the previous version could not be served again (its file is gone, it no
   * longer passes its gate, the state could not be written): the new version serves on, and the
   * probation ends with the breach and the reason recorded for an operator.
   */
  probationFailed(breach: RuleResult, error: string): void {
    const p = this.#probation
    if (!p) return
    this.#probation = undefined
    this.#ctx.logger.error('auto_rollback_failed', {
      model: this.name,
      version: p.version,
      to: p.previous,
      rule: breach.rule,
      error,
    })
    this.#now.history({
      model: this.name,
      version: p.version,
      sha256: p.sha256,
      event: 'auto_rollback_failed',
      to: p.previous,
      rule: breach.rule,
      observed: breach.observed,
      limit: breach.limit,
      sample: breach.sample,
      message: error,
    })
    this.#now.persist()
  }

  // --- the one transition ----------------------------------------------------------------------

  /**
   * Every change of a version's state goes through here, with what goes along with it: counters,
   * a log line, a history entry, a write of state.json (through `outbox`, which an admin change
   * holds back until it is recorded).
   */
  #move(record: VersionRecord, to: VersionState | typeof AT_REST, e: Effects = {}): void {
    record.state = to === AT_REST ? this.#atRest(record) : to
    const labels = { model: this.name }
    e.count?.(this.#ctx.metrics, labels)
    if (e.log) {
      const [level, event, fields] = e.log
      this.#ctx.logger[level](event, { model: this.name, version: record.version, ...fields })
    }
    const out = e.outbox ?? this.#now
    if (e.history) out.history({ model: this.name, version: record.version, ...e.history })
    if (e.persist) out.persist()
  }

  /**
   * The state of a version that is not moving, from what its record holds: loaded and active,
   * loaded and retained, file gone, rolled back, rejected, passed, or none of these.
   */
  #atRest(record: VersionRecord): VersionState {
    if (record.loaded && record.loaded === this.#active) return { status: 'active' }
    if (record.loaded && this.#retained.includes(record.loaded)) return { status: 'retained' }
    if (record.loaded && record.loaded === this.#rollout?.candidate)
      return rolloutState(this.#rollout!)
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
      return { status: 'unloaded', reason: this.#unloaded ? 'unloaded_on_request' : 'evicted' }
    return { status: 'discovered' }
  }

  /**
   * Takes a loaded version out of service (it no longer serves nor is retained): its record no
   * longer points to it, and it is released once its last request ends.
   */
  #takeOut(leaving: LoadedVersion, out: Outbox): VersionRecord | undefined {
    const record = this.#records.get(leaving.version)
    if (record && record.loaded === leaving) record.loaded = undefined
    out.retire(leaving)
    return record
  }

  #trimRetained(out: Outbox): void {
    while (this.#retained.length > this.#config.retain) {
      const leaving = this.#retained.pop()!
      const record = this.#takeOut(leaving, out)
      if (record) this.#move(record, AT_REST)
      out.history({
        model: this.name,
        version: leaving.version,
        sha256: leaving.sha256,
        event: 'unloaded',
        reason: 'left the retained window',
      })
    }
  }

  /**
   * The probation after a swap. A promotion starts one (unless turned off) when there is a version
   * to go back to; a rollback ends any; a restart resumes the recorded one if that version and its
   * bytes serve again. The new version's figures start afresh; the previous one's are its baseline.
   */
  #probationAfter(
    event: 'promoted' | 'restored' | 'rolled_back',
    next: LoadedVersion,
    previous: LoadedVersion | undefined,
    o: SwapOptions,
  ): Probation | undefined {
    const p = this.#probation
    if (event === 'restored')
      return p && p.version === next.version && p.sha256 === next.sha256 ? p : undefined
    const config = this.#config
    const sizes = windowSizes(config.feedback.window)
    if (event === 'rolled_back' || !previous || previous.version === next.version) {
      if (event === 'promoted') this.#ctx.live.restart(this.name, next.version, sizes)
      return undefined
    }
    this.#ctx.live.restart(this.name, next.version, sizes)
    if (!config.probation.enabled || o.skipProbation) return undefined
    const before = this.#ctx.live.find(this.name, previous.version)?.snapshot()
    const now = Date.now()
    return {
      version: next.version,
      sha256: next.sha256,
      previous: previous.version,
      startedAt: new Date(now).toISOString(),
      endsAt: new Date(now + config.probation.seconds * 1000).toISOString(),
      baseline: {
        p99Ms: before?.p99Ms ?? null,
        accuracy: before?.accuracy ?? null,
        mae: before?.mae ?? null,
      },
    }
  }

  #publishLoaded(): void {
    const labels = { model: this.name }
    if (this.#active) this.#ctx.metrics.activeVersion.set(labels, this.#active.version)
    const loaded = (this.#active ? 1 : 0) + this.#retained.length + (this.#rollout ? 1 : 0)
    this.#ctx.metrics.loadedVersions.set(labels, loaded)
  }

  #rolloutEnded(
    r: Rollout,
    result: 'promoted' | 'rejected' | 'rolled_back' | 'aborted' | 'cancelled',
  ): void {
    const labels = { model: this.name }
    this.#ctx.metrics.rollouts.inc({ ...labels, mode: r.mode, result })
    this.#ctx.metrics.canaryPercent.set(labels, 0)
  }

  /** Step `i` of a rollout from `now`, with where the candidate's and the active version's windows stand. */
  #step(
    settings: RolloutSettings,
    i: number,
    now: number,
    active: LoadedVersion,
    candidate: number,
  ): Pick<Rollout, 'step' | 'percent' | 'stepStartedAt' | 'stepEndsAt' | 'marks'> {
    const sizes = windowSizes(this.#config.feedback.window)
    const live = this.#ctx.live
    return rolloutStep(settings, i, now, () => ({
      candidate: live.window(this.name, candidate, sizes).mark(),
      active: live.window(this.name, active.version, sizes).mark(),
    }))
  }

  /**
   * A rollout that ended without a promotion: its candidate stops answering and is released once
   * its last request (or mirrored copy) ends; its record rests as what it is now marked.
   */
  #rolloutOver(r: Rollout, reason: string, out: Outbox, effects?: Effects): void {
    const record = this.#takeOut(r.candidate, out)
    if (!record) return
    this.#move(
      record,
      AT_REST,
      effects ?? {
        count: () => this.#rolloutEnded(r, 'cancelled'),
        log: ['info', 'rollout_cancelled', { reason }],
        history: {
          event: 'rollout_aborted',
          sha256: r.sha256,
          mode: r.mode,
          reason,
          message: `the ${r.mode} rollout ended without a verdict: ${reason}`,
        },
        outbox: out,
      },
    )
    this.#publishLoaded()
  }

  #own(view: VersionView): VersionRecord {
    const record = this.#records.get(view.version)
    if (record !== view)
      throw new Error(`version ${view.version} is not a record of '${this.name}'`)
    return record
  }
}
