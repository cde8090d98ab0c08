import { InsufficientMemoryError } from '../../errors.js'
import { ConfigFileError, readModelConfig } from '../../repository/model-config.js'
import { VersionReadError, type VersionBytes } from '../../repository/read-version.js'
import { EMPTY_VERSION_FOLDER, scanModel, type Ignored } from '../../repository/scanner.js'
import { versionFolder } from '../../repository/layout.js'
import { displayPath } from '../../repository/repository-file.js'
import { basename } from 'node:path'
import { readSmokeSet, type SmokeSet } from '../../repository/smoke-file.js'
import {
  readVersionWhenStable,
  sameFingerprint,
  versionFingerprint,
  type FileFingerprint,
} from '../../repository/version-file.js'
import type { GateReport, StageResult } from '../gate/gate-types.js'
import type { LifecycleContext } from '../lifecycle-context.js'
import type { ModelVersions } from '../versions/model-versions.js'
import type { PromotionTrigger, SwapResult } from '../versions/transitions.js'
import type { VersionState, VersionView } from '../versions/version-state.js'
import type { PersistedModel } from '../state/state-store.js'
import { Promoter } from './promoter.js'
import { followModel } from '../replicas/follow.js'
import { restoreServing } from '../state/restore.js'
import { candidateOrder, isSettled } from '../versions/version-policy.js'
import { newerCandidateExists } from './superseded.js'
import { coalesced } from '../coalesced.js'
import { FollowUp } from './follow-up.js'

/** Passes after a version folder appears, in case chokidar missed a file renamed into it (ms). */
const FOLDER_FOLLOW_UP_MS = [300, 1500] as const

type Consideration = 'promoted' | 'rejected' | 'skipped' | 'waiting' | 'cancelled' | 'rolling_out'

/**
 * One model's promotion pipeline: serialized, roll-forward only, the newest candidate
 * that passes wins. Every pass re-lists the model's folder, so a dropped file-system event costs
 * a delay, never a missed version. Gates run in the gate process; requests never wait on a pass.
 */
export class ModelPipeline {
  readonly #ctx: LifecycleContext
  readonly versions: ModelVersions
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

  constructor(ctx: LifecycleContext, versions: ModelVersions) {
    this.#ctx = ctx
    this.versions = versions
    this.promoter = new Promoter(ctx, versions)
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
  #passEnded(): Promise<void> {
    return new Promise((resolve) => this.#passWaiters.push(resolve))
  }

  /**
   * Resolves once the model serves, or nothing is left to try (no pass queued or running, no file
   * being waited for), or `withinMs` has passed: true if it serves.
   */
  async servingOrSettled(withinMs: number): Promise<boolean> {
    const deadline = Date.now() + withinMs
    while (!this.versions.active && !this.settled && !this.#ctx.closed()) {
      const left = deadline - Date.now()
      if (left <= 0) break
      // Every pass may have served it (a file still in its stability window gets a pass of its own).
      const ended = this.#passEnded()
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        ended,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, left))),
      ])
      clearTimeout(timer)
    }
    return this.versions.active !== undefined
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
          model: this.versions.name,
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
    const { ctx, model } = { ctx: this.#ctx, model: this.versions }
    const [, configured] = await Promise.all([this.#syncDisk(), this.#loadConfig()])
    this.#idle = true
    if (!configured || model.unloaded) return
    if (!ctx.gatekeeper()) {
      // A follower never gates: it serves what the gatekeeper records (follow). Its first load is
      // over once every version on disk has the gatekeeper's verdict.
      this.#idle = [...model.versions.values()].every((r) => !r.onDisk || r.verdict !== undefined)
      return
    }
    for (const record of candidateOrder(model)) {
      if (ctx.closed()) return
      const outcome = await this.#consider(record, trigger)
      if (outcome !== 'skipped' && outcome !== 'rejected' && outcome !== 'rolling_out')
        this.#idle = false
      // The newest candidate that passes wins; a newer one still settling holds back older ones,
      // so a burst of versions ends in one swap, not several. One being rolled out holds them too.
      if (outcome !== 'skipped' && outcome !== 'rejected') break
    }
  }

  /** Brings the records in line with the folder: new versions, moved files, deleted files. */
  async #syncDisk(): Promise<void> {
    const { ctx, model } = { ctx: this.#ctx, model: this.versions }
    const ignored: Ignored[] = []
    const scan = await scanModel(ctx.root, model.name, model.dir, ignored)
    ctx.reportIgnored(ignored, { everySkip: true })
    for (const i of ignored) {
      if (i.reason === EMPTY_VERSION_FOLDER) {
        const v = versionFolder(basename(i.path))
        if (v !== undefined) this.#seenEmpty.add(v)
      }
    }
    model.listed(
      scan.versions,
      ignored
        .filter((i) => i.refused)
        .map((i) => ({ path: displayPath(ctx.root, i.path), reason: i.reason })),
    )
  }

  async #loadConfig(): Promise<boolean> {
    const model = this.versions
    try {
      model.configured(await readModelConfig(this.#ctx.root, model.dir))
      this.#lastProblem.config = undefined
      return true
    } catch (e) {
      if (!(e instanceof ConfigFileError)) throw e
      model.configFailed(e.message)
      if (this.#firstReport('config', e))
        this.#ctx.logger.error('model_config_invalid', { model: model.name, error: e.message })
      return false
    }
  }

  /** One candidate: wait for its file, reuse a recorded verdict, or gate it; promote if it passes. */
  async #consider(record: VersionView, trigger: PromotionTrigger): Promise<Consideration> {
    const { ctx, model } = { ctx: this.#ctx, model: this.versions }
    const current = await versionFingerprint(record.source)
    if (!current) return 'skipped'
    const refused = this.#refused.get(record.version)
    if (refused && sameFingerprint(current, refused.fingerprint)) {
      model.refusedAgain(record, refused.state)
      return 'skipped'
    }
    // Unchanged bytes with a verdict: no need to read, hash or gate them again.
    if (record.verdict && sameFingerprint(current, record.verdictFingerprint)) {
      if (isSettled(record, record.verdict.sha256)) return 'skipped'
      if (record.loaded?.sha256 === record.verdict.sha256 && record.loaded === model.active)
        return 'skipped'
      if (
        record.loaded?.sha256 === record.verdict.sha256 &&
        record.loaded === model.rollout?.candidate
      )
        return 'rolling_out'
    }
    const seen = model.seen(record, current, sameFingerprint(record.seen?.fingerprint, current))
    // A version that cannot fit is not read (nor gated) until memory frees up; a file too large
    // to read at all is refused below instead.
    if (current.size <= ctx.options.maxModelBytes) {
      const deferred = this.#unlessFits(record, () =>
        this.promoter.ensureFits(record, current.size),
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
        model.waiting(record, `waiting: ${read.why}`)
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
    model.checksumFixed(record)
    if (isSettled(record, bytes.sha256)) {
      model.vouched(record, read.fingerprint)
      model.rest(record)
      return 'skipped'
    }
    if (model.active?.sha256 === bytes.sha256 && model.active.version === record.version)
      return 'skipped'
    if (record.verdict?.kind === 'passed' && record.verdict.sha256 === bytes.sha256) {
      model.vouched(record, read.fingerprint)
      // It served before and something else serves now (an explicit promote, a rollback): it is
      // not pushed back in. With nothing serving, it is the best remaining version: no second gate.
      // One that was being rolled out when the server stopped is rolled out again.
      if (model.active && !model.resumesRollout(record, bytes.sha256)) {
        model.rest(record)
        return 'skipped'
      }
      return this.#promoting(record, () => this.promoter.serve(record, bytes, { trigger }))
    }
    return this.#gate(record, bytes, read.fingerprint, provisional, trigger)
  }

  async #gate(
    record: VersionView,
    bytes: VersionBytes,
    fp: FileFingerprint,
    provisional: boolean,
    trigger: PromotionTrigger,
  ): Promise<Consideration> {
    const { ctx, model } = { ctx: this.#ctx, model: this.versions }
    let smoke: SmokeSet
    try {
      smoke = await readSmokeSet(ctx.root, model.dir, record.source.dir)
    } catch (e) {
      if (!(e instanceof ConfigFileError)) throw e
      // The smoke file is broken, not the model: no verdict, and the version waits for the fix.
      model.waiting(record, `waiting for a valid smoke.json: ${e.message}`, {
        waiting: { reason: 'invalid_smoke_file', message: e.message },
      })
      if (this.#firstReport('smoke', e))
        ctx.logger.error('smoke_file_invalid', {
          model: model.name,
          version: record.version,
          error: e.message,
        })
      return 'skipped'
    }
    if (await newerCandidateExists(ctx.root, model, record.version))
      return this.#superseded(record, bytes.sha256, trigger)
    const abort = new AbortController()
    this.#gating = { version: record.version, abort }
    let outcome
    try {
      outcome = await this.promoter.gate(record, bytes, smoke, { signal: abort.signal })
    } finally {
      this.#gating = undefined
    }
    if (!ctx.gatekeeper()) {
      // The lease was lost while the gate ran: the verdict is the new gatekeeper's to reach, and
      // what serves here is what state.json names.
      model.rest(record)
      return 'skipped'
    }
    if (outcome.kind === 'cancelled') return this.#superseded(record, bytes.sha256, trigger)
    const report = outcome.report
    const failedLoad = report.stages.find((s) => s.stage === 'load' && s.status === 'failed')
    if (failedLoad && (provisional || failedLoad.reason === 'file_changed')) {
      // Bytes read early (a folder that just appeared) that do not load may be a copy in progress.
      model.waiting(
        record,
        'waiting: the bytes read so far do not load; they may still be arriving',
      )
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
      model.waiting(record, 'waiting: the file changed while its gate ran')
      this.#retryAt(Date.now() + ctx.options.stabilityMs)
      return 'waiting'
    }
    if (await newerCandidateExists(ctx.root, model, record.version))
      return this.#superseded(record, bytes.sha256, trigger)
    model.vouched(record, fp)
    return this.#promoting(record, () =>
      this.promoter.serve(record, bytes, { trigger, gated: { report, smoke } }),
    )
  }

  async #promoting(
    record: VersionView,
    promote: () => Promise<SwapResult | undefined>,
  ): Promise<Consideration> {
    try {
      const served = await promote()
      return !served ? 'rejected' : served.rollout ? 'rolling_out' : 'promoted'
    } catch (e) {
      if (!(e instanceof InsufficientMemoryError)) throw e
      return this.#deferred(record, e)
    }
  }

  #unlessFits(record: VersionView, check: () => void): Consideration | undefined {
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
  #deferred(record: VersionView, e: InsufficientMemoryError): Consideration {
    this.versions.waiting(record, `waiting: insufficient_memory: ${e.message}`, {
      unlessLoaded: true,
    })
    if (!this.#memoryNote.has(record.version)) {
      this.#memoryNote.add(record.version)
      this.#ctx.logger.warn('insufficient_memory', {
        model: this.versions.name,
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
    record: VersionView,
    sha256: string | undefined,
    fingerprint: FileFingerprint | undefined,
    failed: StageResult,
    trigger: PromotionTrigger,
    report?: GateReport,
  ): Consideration {
    this.versions.rejected(record, { sha256, fingerprint, failed, trigger, report })
    return 'rejected'
  }

  /**
   * At start: takes back what the state file recorded (verdicts, marks, activations) and serves the
   * recorded active version again if its bytes still match; then the retained ones. Verdicts are
   * kept by sha256, so bytes that did not change are not gated again.
   */
  restore(persisted: PersistedModel | undefined): Promise<void> {
    return this.exclusive(async () => {
      await this.#syncDisk()
      if (!persisted) return
      this.versions.recorded(persisted)
      if (!(await this.#loadConfig())) return
      await restoreServing(this.#ctx, this.versions, this.promoter, persisted)
    })
  }

  /**
   * A follower: takes the gatekeeper's verdicts and marks from state.json and serves what it names
   * (replicas/follow.ts). Returns why this model is not in line yet, if it is not.
   */
  follow(persisted: PersistedModel): Promise<string | undefined> {
    return this.exclusive(async () => {
      if (this.#ctx.closed()) return undefined
      await this.#syncDisk()
      this.versions.recorded(persisted)
      if (!(await this.#loadConfig())) return 'its model.json is invalid here'
      const behind = await followModel(this.#ctx, this.versions, this.promoter, persisted)
      // The swaps above made probations of their own: the gatekeeper's is the one that runs.
      this.versions.recorded(persisted)
      this.#passes++
      if ([...this.versions.versions.values()].every((r) => !r.onDisk || r.verdict))
        this.#judged = true
      return behind
    })
  }

  /** This replica lost the gatekeeper lease: a gate running here is abandoned. */
  abandonGate(): void {
    this.#gating?.abort.abort()
  }

  /** A newer version arrived while an older one is being gated: stop gating the older one. */
  async #abandonIfSuperseded(): Promise<void> {
    const gating = this.#gating
    if (!gating || gating.abort.signal.aborted) return
    try {
      if (
        (await newerCandidateExists(this.#ctx.root, this.versions, gating.version)) &&
        this.#gating === gating
      )
        gating.abort.abort()
    } catch (e) {
      // The pass checks again before it promotes: a failed check costs a wasted gate at most.
      this.#ctx.logger.warn('superseded_check_failed', { model: this.versions.name, error: e })
    }
  }

  /** Abandons a candidate for a newer one: recorded, and a new pass will consider the newer. */
  #superseded(record: VersionView, sha256: string, trigger: PromotionTrigger): Consideration {
    this.versions.superseded(record, sha256, trigger)
    void this.schedule(trigger)
    return 'cancelled'
  }
}
