import type { Logger } from '../../log.js'
import type { LiveFigures } from '../../metrics/live-figures.js'
import type { ServerMetrics } from '../../metrics/server-metrics.js'
import type { VersionSource } from '../../repository/scanner.js'
import type { GateReport, StageResult } from '../gate/gate-types.js'
import type { History, HistoryEntry } from '../state/history.js'
import type { LoadedVersion } from './loaded-version.js'
import type { Probation, Rollout, Verdict, VersionView } from './version-state.js'

/**
 * The vocabulary of a model's transitions (ModelVersions): what sets them off, where their side
 * effects go, what a swap takes and gives, what an admin change keeps to undo one.
 */

/** What set a promotion off, as history and metrics record it. */
/** What caused a promotion; `replica`: a follower serving what the gatekeeper recorded. */
export type PromotionTrigger = 'startup' | 'watch' | 'admin' | 'rollback' | 'rollout' | 'replica'

/** A version's record as its owner holds it; everything else gets it as a read-only VersionView. */
export type VersionRecord = { -readonly [K in keyof VersionView]: VersionView[K] }

export function newVersionRecord(source: VersionSource): VersionView {
  return {
    version: source.version,
    source,
    onDisk: true,
    seen: undefined,
    state: { status: 'discovered' },
    loaded: undefined,
    gate: undefined,
    verdict: undefined,
    verdictFingerprint: undefined,
    rolledBack: undefined,
  }
}

export interface VersionsContext {
  readonly metrics: ServerMetrics
  /** Every version's live figures: a promotion starts the new version's afresh. */
  readonly live: LiveFigures
  readonly logger: Logger
  readonly history: History
  /** Writes the state of every model soon (coalesced); a failure is logged and retried. */
  persist(): void
  /** False on a follower replica: what it serves, the gatekeeper decided (and said) already. */
  readonly gatekeeper?: () => boolean
}

/**
 * Where a transition's side effects go. By default they happen at once; inside an admin change
 * (AdminChange) history entries and releases wait until state.json records the change, and the
 * write is the change's own.
 */
export interface Outbox {
  history(entry: Omit<HistoryEntry, 'time'>): void
  retire(version: LoadedVersion): void
  persist(): void
}

export type LogLine = readonly ['info' | 'warn', string, Record<string, unknown>]

export interface Effects {
  readonly log?: LogLine
  readonly history?: Omit<HistoryEntry, 'time' | 'model' | 'version'>
  /** Counters and timings of the event. */
  readonly count?: (metrics: ServerMetrics, labels: { model: string }) => void
  readonly persist?: boolean
  readonly outbox?: Outbox
}

/** What a version that was just loaded for serving brings along: its gate report and verdict. */
export interface Served {
  readonly gate: GateReport
  readonly verdict: Verdict
}

export interface SwapOptions {
  readonly trigger: PromotionTrigger
  /** The gate's report and verdict for the version swapped in, when it was just loaded. */
  readonly served?: Served
  readonly stages?: readonly StageResult[]
  readonly unverified?: boolean
  readonly gateMs?: number
  /** A recorded version served again without a second gate (at start, or nothing else serves). */
  readonly restored?: boolean
  /** A rollback: the version it replaces is marked and released, not retained. */
  readonly rollbackReason?: string
  /** An admin promotion: it serves the model again and clears the version's rollback mark. */
  readonly explicit?: boolean
  /** No probation after this promotion (`"skipProbation": true` on an admin promote). */
  readonly skipProbation?: boolean
  /** The admin change this swap is part of. */
  readonly change?: Outbox
  /** A rollout that ends in this promotion: its mode and figures, recorded with it. */
  readonly rollout?: Pick<HistoryEntry, 'mode' | 'shadow' | 'rules'>
}

export interface SwapResult {
  readonly from: number | undefined
  readonly to: number
  /** Milliseconds the swap itself took. */
  readonly ms: number
  /** Nothing was swapped: the version was loaded beside the active one, for a rollout. */
  readonly rollout?: true
}

/** What an admin change must put back if state.json cannot record it (AdminChange). */
export interface VersionsSnapshot {
  readonly active: LoadedVersion | undefined
  readonly retained: readonly LoadedVersion[]
  readonly activations: readonly number[]
  readonly unloaded: boolean
  readonly probation: Probation | undefined
  readonly rollout: Rollout | undefined
  readonly records: ReadonlyMap<
    VersionRecord,
    Pick<VersionRecord, 'loaded' | 'rolledBack' | 'state'>
  >
}
