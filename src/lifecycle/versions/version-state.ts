import type { ModelConfig } from '../../repository/model-config.js'
import type { VersionSource } from '../../repository/scanner.js'
import type { FileFingerprint } from '../../repository/version-file.js'
import type { GateReport } from '../gate/gate-types.js'
import type { LiveMark } from '../../metrics/live-figures.js'
import type { LoadedVersion } from './loaded-version.js'

/**
 * Where a version is in its lifecycle (transitions: docs/architecture.md). Explicit data with a
 * reason, never a scattering of booleans; only lifecycle/ assigns it.
 *
 *   discovered -> loading -> validating -> warming -> active -> retained -> unloaded
 *                    \------------\-----------\--> rejected (never retried unless the file changes)
 *   warming -> shadow | canary (a rollout: loaded beside the active version) -> active
 *                    \--> rejected (shadow_disagreement) or rolled_back (canary_failed, aborted)
 *   active --rollback--> rolled_back (never auto-promoted again; an explicit promote can)
 *   (not loaded, file deleted) -> missing
 */
export type VersionState =
  /** On disk, not decided: older than the active version, waiting for its file to settle, or queued. */
  | {
      readonly status: 'discovered'
      readonly note?: string
      /** Held back by a configuration error (not a verdict on the model): fixing the file lets it through. */
      readonly waiting?: { readonly reason: 'invalid_smoke_file'; readonly message: string }
    }
  /** Its bytes are being read and checked (stability, checksum). */
  | { readonly status: 'loading' }
  /** The gate is running (in the gate process). */
  | { readonly status: 'validating' }
  /** Passed; its serving session is being created and warmed up. */
  | { readonly status: 'warming' }
  | { readonly status: 'active' }
  /** Passed its gate, loaded beside the active version: gets a copy of requests, answers none. */
  | { readonly status: 'shadow' }
  /** Passed its gate, loaded beside the active version: answers `percent` % of requests. */
  | { readonly status: 'canary'; readonly percent: number }
  /** Replaced, still loaded: a rollback to it is a pointer swap. */
  | { readonly status: 'retained' }
  /**
   * Passed its gate once, not loaded: `evicted` (outside the retained window: a rollback to it loads
   * and gates it again) or `unloaded_on_request` (the model was unloaded through the V2 repository API).
   */
  | { readonly status: 'unloaded'; readonly reason: 'evicted' | 'unloaded_on_request' }
  | {
      readonly status: 'rejected'
      readonly stage: string
      readonly reason: string
      readonly message: string
    }
  | { readonly status: 'rolled_back'; readonly reason: string }
  /** Its file was deleted and it is not loaded. */
  | { readonly status: 'missing' }

export interface Verdict {
  readonly kind: 'passed' | 'rejected'
  /** The bytes the verdict is about: a file that changes is a new candidate. */
  readonly sha256: string
  readonly unverified?: boolean | undefined
  readonly stage?: string | undefined
  readonly reason?: string | undefined
  readonly message?: string | undefined
  readonly at: string
  /** The gate's time for one run at the largest serving batch (ms): what `auto` execution decides on after a restart. */
  readonly runMs?: number | undefined
}

/** The mark a rollback leaves on the bytes it went back from: they are not promoted by themselves again. */
export interface RollbackMark {
  readonly sha256: string
  readonly reason: string
  readonly at: string
}

/** The file as last seen, since when (for the stability window), and whether it was seen changing. */
export interface Seen {
  readonly fingerprint: FileFingerprint
  readonly sinceMs: number
  readonly changed: boolean
}

/** One version as everything outside its owner (ModelVersions) sees it: read-only. */
export interface VersionView {
  readonly version: number
  readonly source: VersionSource
  /** False once its file is gone; a loaded version keeps serving regardless. */
  readonly onDisk: boolean
  readonly seen: Seen | undefined
  readonly state: VersionState
  /** The sessions serving (or retained) for this version, if any. */
  readonly loaded: LoadedVersion | undefined
  /** The last gate run, with every stage's result. */
  readonly gate: GateReport | undefined
  readonly verdict: Verdict | undefined
  /** The fingerprint of the file whose bytes the verdict is about: unchanged, no need to hash again. */
  readonly verdictFingerprint: FileFingerprint | undefined
  readonly rolledBack: RollbackMark | undefined
}

/** A model's versions as the data plane, the policy and persistence see them: read-only. */
export interface ModelView {
  readonly name: string
  readonly dir: string
  /** model.json as last read, defaults filled in; DEFAULT_MODEL_CONFIG until it is read (or while it has no model.json). */
  readonly config: ModelConfig
  /** model.json could not be read or validated: nothing is gated until it is fixed. */
  readonly configError: string | undefined
  readonly versions: ReadonlyMap<number, VersionView>
  /** The version that serves. */
  readonly active: LoadedVersion | undefined
  /** Replaced versions kept loaded for rollback, most recent first. */
  readonly retained: readonly LoadedVersion[]
  /** Versions in the order they became active, the current one last: the rollback targets. */
  readonly activations: readonly number[]
  /** Unloaded on request (V2 repository extension): nothing is promoted until it is loaded again. */
  readonly unloaded: boolean
  /**
   * Entries of the model's folder refused for safety at the last listing (a version folder or file
   * that resolves outside the models directory), paths relative to the models directory.
   */
  readonly refused: readonly { readonly path: string; readonly reason: string }[]
  /** The probation of the active version, while it runs. */
  readonly probation: Probation | undefined
  /** The candidate being rolled out beside the active version, while it is. */
  readonly rollout: Rollout | undefined
  /**
   * The version a request with no version named goes to: the active one, or the canary for its
   * share (`sticky`: the same key always the same way; without one, at random).
   */
  route(sticky: string | undefined): LoadedVersion | undefined
}

export type RolloutSettings = Exclude<ModelConfig['rollout'], { mode: 'immediate' }>

/** Counts of mirrored requests: the candidate's answers against the active version's. */
export interface ShadowTally {
  /** Mirrored requests whose answers were compared (or whose mirror failed). */
  compared: number
  agreed: number
  /** The candidate failed on a request the active version answered (counted as a disagreement). */
  failed: number
  /** Not mirrored: the candidate was busy with earlier copies. */
  dropped: number
  /** Sum of the mean absolute differences of numeric outputs, one per compared request. */
  absDiffSum: number
  /** Requests with a numeric difference counted in `absDiffSum`. */
  absDiffCount: number
  /** Mirrored runs in flight now. */
  inFlight: number
}

/**
 * A rollout in progress: the candidate loaded beside the active version (`against`), mirrored
 * (`shadow`) or answering a growing share (`canary`). Owned by ModelVersions, which changes it.
 */
export interface Rollout {
  readonly version: number
  readonly sha256: string
  readonly mode: 'shadow' | 'canary'
  /** model.json's `rollout` when it started: editing the file does not change a rollout under way. */
  readonly settings: RolloutSettings
  readonly candidate: LoadedVersion
  /** The active version when it started: it is judged against this one. */
  readonly against: number
  readonly startedAt: string
  /** Canary: the step running (0-based) and its share; shadow: 0 and 0. */
  readonly step: number
  readonly percent: number
  readonly stepStartedAt: string
  readonly stepEndsAt: string | undefined
  /** Canary: where each version's live window stood when the step began (the same period for both). */
  readonly marks: { readonly candidate: LiveMark; readonly active: LiveMark } | undefined
  /** Shadow: the mirrored requests' counts (changed in place by the data plane). */
  readonly shadow: ShadowTally
}

/** A probation: the version on trial, the one it replaced, its window, and what it is held to. */
export interface Probation {
  readonly version: number
  readonly sha256: string
  readonly previous: number
  readonly startedAt: string
  readonly endsAt: string
  readonly baseline: Baseline
}

/** The previous version's figures just before the swap: what the new version is held to. */
export interface Baseline {
  readonly p99Ms: number | null
  readonly accuracy: number | null
  readonly mae: number | null
}
