/**
 * Where a version is in its lifecycle (transitions: docs/architecture.md). Explicit data with a
 * reason, never a scattering of booleans; only lifecycle/ assigns it.
 *
 *   discovered -> loading -> validating -> warming -> active -> retained -> unloaded
 *                    \------------\-----------\--> rejected (never retried unless the file changes)
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
