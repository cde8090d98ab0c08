import { InsufficientMemoryError } from '../errors.js'
import { ConfigFileError, readModelConfig } from '../repository/model-config.js'
import {
  readVersionBytes,
  VersionReadError,
  type VersionBytes,
} from '../repository/read-version.js'
import { EMPTY_VERSION_FOLDER, scanModel, type Ignored } from '../repository/scanner.js'
import { versionFolder } from '../repository/layout.js'
import { displayPath } from '../repository/repository-file.js'
import { basename } from 'node:path'
import { readSmokeSet, type SmokeSet } from '../repository/smoke-file.js'
import {
  readVersionWhenStable,
  sameFingerprint,
  versionFingerprint,
  type FileFingerprint,
} from '../repository/version-file.js'
import type { GateReport, StageResult } from './gate/gate-types.js'
import type { LifecycleContext } from './lifecycle-context.js'
import type { ModelRecord, VersionRecord } from './model-registry.js'
import type { VersionState } from './version-state.js'
import type { PersistedModel } from './state-store.js'
import { newVersionRecord } from './model-registry.js'
import { Promoter, type PromotionTrigger } from './promoter.js'
import { candidateOrder, isSettled } from './version-policy.js'
import { newerCandidateExists } from './superseded.js'
import { coalesced } from './coalesced.js'
import { FollowUp } from './follow-up.js'

/** Passes after a version folder appears, in case chokidar missed a file renamed into it (ms). */
const FOLDER_FOLLOW_UP_MS = [300, 1500] as const

type Consideration = 'promoted' | 'rejected' | 'skipped' | 'waiting' | 'cancelled'

/**
 * One model's promotion pipeline: serialized, roll-forward only, the newest candidate
 * that passes wins. Every pass re-lists the model's folder, so a dropped file-system event costs
 * a delay, never a missed version. Gates run in the gate process; requests never wait on a pass.
 */
export class ModelPipeline {
  readonly #ctx: LifecycleContext
  readonly model: ModelRecord
  readonly promoter: Promoter
  #queue: Promise<unknown> = Promise.resolve()
  /** The pass waiting to start, if any: every request for a pass until it starts joins it. */
  #queuedPass: Promise<void> | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #retryAtMs = Infinity
  #gating: { version: number; abort: AbortController } | undefined
  /** The last problem logged for model.json and for smoke.json: each is logged once, not per pass. */
  readonly #lastProblem: { config?: string; smoke?: string } = {}
  /** Completed passes; the first one ends the model's initial load. */
  #passes = 0
  readonly #passWaiters: (() => void)[] = []
  #running = false
  #idle = false
  #judged = false
  /** Versions deferred for memory, logged once each until they fit. */
  readonly #memoryNote = new Set<number>()
  /** Version folders listed while they had no model file yet: their file is being written in place. */
  readonly #seenEmpty = new Set<number>()
  /**
   * Versions whose file was refused unread (too large, not a regular file, outside the models
   * directory, unreadable): there is no sha256 to hang a verdict on, so the verdict hangs on the
   * file's identity. In memory only: state.json keys verdicts by sha256, so after a restart such a
   * file is judged once more.
   */
  readonly #refused = new Map<
    number,
    { readonly fingerprint: FileFingerprint; readonly state: VersionState }
  >()
  /** At most one "is the candidate being gated superseded?" check in flight, one more queued. */
  readonly #checkSuperseded = coalesced(() => this.#abandonIfSuperseded())
  /** Passes again a while after version folders appear (see `folderAppeared`). */
  readonly #folderFollowUps: readonly FollowUp[]

  constructor(ctx: LifecycleContext, model: ModelRecord) {
    this.#ctx = ctx
    this.model = model
    this.promoter = new Promoter(ctx, model)
    this.#folderFollowUps = FOLDER_FOLLOW_UP_MS.map(
      (ms) => new FollowUp(ms, () => void this.schedule('watch')),
    )
  }

  /**
   * Some pass found nothing left to try (every version settled, rejected, or held back by a
   * configuration error): the model's first load is over, served or not.
   */
  get judged(): boolean {
    return this.#judged
  }

  /** Nothing left to do for now: a pass has run, none is queued, no file is being waited for. */
  get settled(): boolean {
    return (
      this.#passes > 0 &&
      this.#queuedPass === undefined &&
      !this.#running &&
      this.#retryAtMs === Infinity
    )
  }

  /** Resolves when the pass running or queued now (or, with none, the next one) ends, or on close. */
  passEnded(): Promise<void> {
    return new Promise((resolve) => this.#passWaiters.push(resolve))
  }

  /** Runs `op` exclusively with passes and other operations on this model. */
  exclusive<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(op)
    this.#queue = result.catch(() => undefined)
    return result
  }

  /**
   * Asks for a pass soon. O(1) however often it is called (a burst of file-system events calls it
   * once per event): requests coalesce into the one pass waiting to start, and while a gate runs
   * they coalesce into at most one superseded check in flight.
   */
  schedule(trigger: PromotionTrigger = 'watch'): Promise<void> {
    if (this.#gating && !this.#gating.abort.signal.aborted) void this.#checkSuperseded()
    if (this.#queuedPass) return this.#queuedPass
    const pass = this.exclusive(async () => {
      this.#queuedPass = undefined
      if (this.#ctx.closed()) return
      this.#running = true
      try {
        await this.#pass(trigger)
      } catch (e) {
        this.#ctx.logger.error('pass_failed', {
          model: this.model.name,
          error: e,
          stack: (e as Error).stack,
        })
      } finally {
        this.#running = false
        this.#passes++
        if (this.#idle) this.#judged = true
        for (const resolve of this.#passWaiters.splice(0)) resolve()
      }
    })
    this.#queuedPass = pass
    return pass
  }

  /**
   * A version folder appeared. chokidar lists a new folder before it watches it, so a file renamed
   * into it a moment later can go unreported: pass again shortly after, whatever the events say.
   */
  folderAppeared(): void {
    for (const f of this.#folderFollowUps) f.request()
  }

  close(): void {
    for (const resolve of this.#passWaiters.splice(0)) resolve()
    clearTimeout(this.#retryTimer)
    for (const f of this.#folderFollowUps) f.cancel()
    this.#gating?.abort.abort()
  }

  #retryAt(atMs: number): void {
    if (this.#ctx.closed() || atMs >= this.#retryAtMs) return
    clearTimeout(this.#retryTimer)
    this.#retryAtMs = atMs
    this.#retryTimer = setTimeout(
      () => {
        this.#retryAtMs = Infinity
        void this.schedule('watch')
      },
      Math.max(10, atMs - Date.now() + 5),
    )
    this.#retryTimer.unref()
  }

  async #pass(trigger: PromotionTrigger): Promise<void> {
    const { ctx, model } = { ctx: this.#ctx, model: this.model }
    const [, configured] = await Promise.all([this.#syncDisk(), this.#loadConfig()])
    this.#idle = true
    if (!configured || model.unloaded) return
    for (const record of candidateOrder(model)) {
      if (ctx.closed()) return
      const outcome = await this.#consider(record, trigger)
      if (outcome !== 'skipped' && outcome !== 'rejected') this.#idle = false
      // The newest candidate that passes wins; a newer one still settling holds back older ones,
      // so a burst of versions ends in one swap, not several.
      if (outcome === 'promoted' || outcome === 'waiting' || outcome === 'cancelled') break
    }
  }

  /** Brings the records in line with the folder: new versions, moved files, deleted files. */
  async #syncDisk(): Promise<void> {
    const { ctx, model } = { ctx: this.#ctx, model: this.model }
    const ignored: Ignored[] = []
    const scan = await scanModel(ctx.root, model.name, model.dir, ignored)
    ctx.reportIgnored(ignored, { everySkip: true })
    model.refused = ignored
      .filter((i) => i.refused)
      .map((i) => ({ path: displayPath(ctx.root, i.path), reason: i.reason }))
    for (const i of ignored) {
      if (i.reason === EMPTY_VERSION_FOLDER) {
        const v = versionFolder(basename(i.path))
        if (v !== undefined) this.#seenEmpty.add(v)
      }
    }
    const present = new Set<number>()
    for (const source of scan.versions) {
      present.add(source.version)
      const record = model.versions.get(source.version)
      if (!record) {
        model.versions.set(source.version, newVersionRecord(source))
        continue
      }
      record.source = source
      if (!record.onDisk) {
        record.onDisk = true
        if (record.state.status === 'missing') record.state = this.promoter.restingState(record)
      }
    }
    for (const record of model.versions.values()) {
      if (present.has(record.version) || !record.onDisk) continue
      record.onDisk = false
      record.seen = undefined
      if (!record.loaded) {
        record.state = { status: 'missing' }
        // Its gate report lives on in history.jsonl; a server that ships versions all day and
        // prunes old folders should not hold every report in memory.
        record.gate = undefined
      }
      ctx.logger.warn('version_missing', {
        model: model.name,
        version: record.version,
        loaded: record.loaded !== undefined,
      })
      void ctx.history.append({
        model: model.name,
        version: record.version,
        event: 'missing',
        sha256: record.loaded?.sha256 ?? record.verdict?.sha256,
      })
      ctx.persist()
    }
  }

  async #loadConfig(): Promise<boolean> {
    const model = this.model
    try {
      model.config = await readModelConfig(this.#ctx.root, model.dir)
      model.configError = undefined
      this.#lastProblem.config = undefined
      return true
    } catch (e) {
      if (!(e instanceof ConfigFileError)) throw e
      model.configError = e.message
      if (this.#firstReport('config', e))
        this.#ctx.logger.error('model_config_invalid', { model: model.name, error: e.message })
      return false
    }
  }

  /** One candidate: wait for its file, reuse a recorded verdict, or gate it; promote if it passes. */
  async #consider(record: VersionRecord, trigger: PromotionTrigger): Promise<Consideration> {
    const ctx = this.#ctx
    const current = await versionFingerprint(record.source)
    if (!current) return 'skipped'
    const refused = this.#refused.get(record.version)
    if (refused && sameFingerprint(current, refused.fingerprint)) {
      if (!record.loaded) record.state = refused.state
      return 'skipped'
    }
    // Unchanged bytes with a verdict: no need to read, hash or gate them again.
    if (record.verdict && sameFingerprint(current, record.verdictFingerprint)) {
      if (isSettled(record, record.verdict.sha256)) return 'skipped'
      if (record.loaded?.sha256 === record.verdict.sha256 && record.loaded === this.model.active)
        return 'skipped'
    }
    if (!sameFingerprint(record.seen?.fingerprint, current)) {
      record.seen = {
        fingerprint: current,
        sinceMs: Date.now(),
        changed: record.seen !== undefined,
      }
    }
    const seen = record.seen!
    // A version that cannot fit is not read (nor gated) until memory frees up; a file too large
    // to read at all is refused below instead.
    if (current.size <= ctx.options.maxModelBytes) {
      const deferred = this.#unlessFits(record, () =>
        this.promoter.ensureFits(record.version, current.size),
      )
      if (deferred) return deferred
    }
    let read
    try {
      read = await readVersionWhenStable(ctx.root, record.source, {
        windowMs: ctx.options.stabilityMs,
        firstSeenMs: seen.sinceMs,
        seenChanging: seen.changed,
        // A folder renamed in arrives whole; one seen empty is being filled in place (cp), and waits.
        folderFastPath: !this.#seenEmpty.has(record.version) && !seen.changed,
        maxBytes: ctx.options.maxModelBytes,
      })
    } catch (e) {
      if (!(e instanceof VersionReadError)) throw e
      const outcome = this.#reject(
        record,
        undefined,
        undefined,
        { stage: 'load', status: 'failed', ms: 0, reason: e.reason, message: e.message },
        trigger,
      )
      this.#refused.set(record.version, { fingerprint: current, state: record.state })
      return outcome
    }
    switch (read.kind) {
      case 'gone':
        return 'skipped'
      case 'wait':
        record.state = { status: 'discovered', note: `waiting: ${read.why}` }
        this.#retryAt(read.retryAtMs)
        return 'waiting'
      case 'checksum_mismatch':
        return this.#reject(
          record,
          read.sha256,
          current,
          {
            stage: 'load',
            status: 'failed',
            ms: 0,
            reason: 'checksum_mismatch',
            message: read.message,
          },
          trigger,
        )
    }
    const { bytes, provisional } = read
    // The bytes are ready, so they match their sidecar now: a mismatch recorded before was fixed.
    if (record.verdict?.kind === 'rejected' && record.verdict.reason === 'checksum_mismatch')
      record.verdict = undefined
    if (isSettled(record, bytes.sha256)) {
      record.verdictFingerprint = read.fingerprint
      record.state = this.promoter.restingState(record)
      return 'skipped'
    }
    if (this.model.active?.sha256 === bytes.sha256 && this.model.active.version === record.version)
      return 'skipped'
    if (record.verdict?.kind === 'passed' && record.verdict.sha256 === bytes.sha256) {
      record.verdictFingerprint = read.fingerprint
      // It served before and something else serves now (an explicit promote, a rollback): it is
      // not pushed back in. With nothing serving, it is the best remaining version: no second gate.
      if (this.model.active) {
        record.state = this.promoter.restingState(record)
        return 'skipped'
      }
      return this.#promoting(record, () => this.promoter.promoteWithoutGate(record, bytes, trigger))
    }
    return this.#gate(record, bytes, read.fingerprint, provisional, trigger)
  }

  async #gate(
    record: VersionRecord,
    bytes: VersionBytes,
    fp: FileFingerprint,
    provisional: boolean,
    trigger: PromotionTrigger,
  ): Promise<Consideration> {
    const ctx = this.#ctx
    const model = this.model
    let smoke: SmokeSet
    try {
      smoke = await readSmokeSet(ctx.root, model.dir, record.source.dir)
    } catch (e) {
      if (!(e instanceof ConfigFileError)) throw e
      // The smoke file is broken, not the model: no verdict, and the version waits for the fix.
      record.state = {
        status: 'discovered',
        note: `waiting for a valid smoke.json: ${e.message}`,
        waiting: { reason: 'invalid_smoke_file', message: e.message },
      }
      if (this.#firstReport('smoke', e))
        ctx.logger.error('smoke_file_invalid', {
          model: model.name,
          version: record.version,
          error: e.message,
        })
      return 'skipped'
    }
    if (await newerCandidateExists(this.#ctx.root, this.model, record.version))
      return this.#superseded(record, bytes.sha256, trigger)
    const abort = new AbortController()
    this.#gating = { version: record.version, abort }
    record.state = { status: 'validating' }
    let report: GateReport | undefined
    try {
      const outcome = await ctx.gates.run(this.promoter.gateJob(record, bytes.sha256, smoke), {
        timeoutMs: model.config.gateTimeoutSeconds * 1000,
        signal: abort.signal,
      })
      if (outcome.kind === 'cancelled') return this.#superseded(record, bytes.sha256, trigger)
      report = outcome.report
    } finally {
      this.#gating = undefined
    }
    const failedLoad = report.stages.find((s) => s.stage === 'load' && s.status === 'failed')
    if (failedLoad && (provisional || failedLoad.reason === 'file_changed')) {
      // Bytes read early (a folder that just appeared) that do not load may be a copy in progress.
      record.state = {
        status: 'discovered',
        note: 'waiting: the bytes read so far do not load; they may still be arriving',
      }
      this.#retryAt(
        Math.max(record.seen?.sinceMs ?? Date.now(), fp.mtimeMs) + ctx.options.stabilityMs,
      )
      return 'waiting'
    }
    if (!report.passed) {
      const failed = report.stages.find((s) => s.status === 'failed')!
      return this.#reject(record, bytes.sha256, fp, failed, trigger, report)
    }
    if (!sameFingerprint(await versionFingerprint(record.source), fp)) {
      // Written to while it was gated: those bytes were not the final ones.
      record.state = { status: 'discovered', note: 'waiting: the file changed while its gate ran' }
      this.#retryAt(Date.now() + ctx.options.stabilityMs)
      return 'waiting'
    }
    if (await newerCandidateExists(this.#ctx.root, this.model, record.version))
      return this.#superseded(record, bytes.sha256, trigger)
    record.verdictFingerprint = fp
    return this.#promoting(record, () =>
      this.promoter.promoteGated(record, bytes, report, smoke, trigger),
    )
  }

  async #promoting(record: VersionRecord, promote: () => Promise<boolean>): Promise<Consideration> {
    try {
      return (await promote()) ? 'promoted' : 'rejected'
    } catch (e) {
      if (!(e instanceof InsufficientMemoryError)) throw e
      return this.#deferred(record, e)
    }
  }

  #unlessFits(record: VersionRecord, check: () => void): Consideration | undefined {
    try {
      check()
      this.#memoryNote.delete(record.version)
      return undefined
    } catch (e) {
      if (!(e instanceof InsufficientMemoryError)) throw e
      return this.#deferred(record, e)
    }
  }

  /**
   * Not enough memory for the version: no verdict on the model, the active version serves on, and
   * every pass (at least every --rescan-ms) looks again. Logged once per version until it fits.
   */
  #deferred(record: VersionRecord, e: InsufficientMemoryError): Consideration {
    if (!record.loaded)
      record.state = { status: 'discovered', note: `waiting: insufficient_memory: ${e.message}` }
    if (!this.#memoryNote.has(record.version)) {
      this.#memoryNote.add(record.version)
      this.#ctx.logger.warn('insufficient_memory', {
        model: this.model.name,
        version: record.version,
        error: e.message,
      })
    }
    return 'waiting'
  }

  /** A broken model.json or smoke.json is logged once per problem and file, not on every pass. */
  #firstReport(file: 'config' | 'smoke', e: ConfigFileError): boolean {
    const id = e.identity
    const key = id ? `${e.message}\0${id.dev}:${id.ino}:${id.size}:${id.mtimeMs}` : e.message
    const first = this.#lastProblem[file] !== key
    this.#lastProblem[file] = key
    return first
  }

  #reject(
    record: VersionRecord,
    sha256: string | undefined,
    fp: FileFingerprint | undefined,
    stage: StageResult,
    trigger: PromotionTrigger,
    report?: GateReport,
  ): Consideration {
    this.promoter.recordRejection(record, sha256, fp, stage, trigger, report)
    return 'rejected'
  }

  /**
   * At start: takes back what the state file recorded (verdicts, marks, activations) and serves the
   * recorded active version again if its bytes still match; then the retained ones. Verdicts are
   * kept by sha256, so bytes that did not change are not gated again.
   */
  restore(persisted: PersistedModel | undefined): Promise<void> {
    return this.exclusive(async () => {
      const { ctx, model } = { ctx: this.#ctx, model: this.model }
      await this.#syncDisk()
      if (!persisted) return
      for (const [key, p] of Object.entries(persisted.versions)) {
        const record = model.versions.get(Number(key))
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
        if (p.rolledBack)
          record.rolledBack = { sha256: p.sha256, reason: p.rolledBack.reason, at: p.rolledBack.at }
        record.state = this.promoter.restingState(record)
      }
      model.activations = persisted.activations.filter((v) => model.versions.has(v))
      if (!(await this.#loadConfig())) return
      const active = persisted.active
      if (active) {
        const why = await this.#restoreOne(active, 'active')
        if (why) {
          ctx.logger.warn('restore_failed', {
            model: model.name,
            version: active.version,
            reason: why,
          })
          void ctx.history.append({
            model: model.name,
            version: active.version,
            sha256: active.sha256,
            event: 'restore_failed',
            trigger: 'startup',
            reason: why,
          })
        }
      }
      for (const ref of persisted.retained) {
        if (model.retained.length >= model.config.retain) break
        const why = await this.#restoreOne(ref, 'retained')
        if (why)
          ctx.logger.info('retained_not_restored', {
            model: model.name,
            version: ref.version,
            reason: why,
          })
      }
    })
  }

  /** Loads a recorded version without a gate if its bytes are the recorded ones; else says why not. */
  async #restoreOne(
    ref: { version: number; sha256: string },
    as: 'active' | 'retained',
  ): Promise<string | undefined> {
    const record = this.model.versions.get(ref.version)
    if (!record?.onDisk) return 'its file is missing'
    if (record.rolledBack?.sha256 === ref.sha256 && as === 'retained') return 'it was rolled back'
    let bytes: VersionBytes
    try {
      bytes = await readVersionBytes(this.#ctx.root, record.source, this.#ctx.options.maxModelBytes)
    } catch (e) {
      return (e as Error).message
    }
    if (bytes.sha256 !== ref.sha256)
      return `its file changed (sha256 ${bytes.sha256}, recorded ${ref.sha256})`
    record.verdictFingerprint = await versionFingerprint(record.source)
    try {
      if (as === 'active')
        return (await this.promoter.promoteWithoutGate(record, bytes, 'startup'))
          ? undefined
          : 'it no longer loads'
      return (await this.promoter.retainWithoutGate(record, bytes))
        ? undefined
        : 'it no longer loads'
    } catch (e) {
      if (e instanceof InsufficientMemoryError) return e.message
      throw e
    }
  }

  /** A newer version arrived while an older one is being gated: stop gating the older one. */
  async #abandonIfSuperseded(): Promise<void> {
    const gating = this.#gating
    if (!gating || gating.abort.signal.aborted) return
    try {
      if (
        (await newerCandidateExists(this.#ctx.root, this.model, gating.version)) &&
        this.#gating === gating
      )
        gating.abort.abort()
    } catch (e) {
      // The pass checks again before it promotes: a failed check costs a wasted gate at most.
      this.#ctx.logger.warn('superseded_check_failed', { model: this.model.name, error: e })
    }
  }

  /** Abandons a candidate for a newer one: recorded, and a new pass will consider the newer. */
  #superseded(record: VersionRecord, sha256: string, trigger: PromotionTrigger): Consideration {
    const { ctx, model } = { ctx: this.#ctx, model: this.model }
    record.state = { status: 'discovered', note: 'superseded by a newer version' }
    ctx.metrics.promotions.inc({ model: model.name, result: 'superseded' })
    void ctx.history.append({
      model: model.name,
      version: record.version,
      sha256,
      event: 'superseded',
      trigger,
    })
    void this.schedule(trigger)
    return 'cancelled'
  }
}
