/**
 * Where a version is in its lifecycle (DESIGN §2). Explicit data with a reason, never a scattering
 * of booleans; only lifecycle/ assigns it.
 */
export type VersionState =
  /** On disk, not loaded (older than the active version, or not reached yet). */
  | { readonly status: 'discovered' }
  | { readonly status: 'loading' }
  | { readonly status: 'active' }
  | { readonly status: 'rejected'; readonly stage: string; readonly reason: string; readonly message: string }

export type VersionStatus = VersionState['status']
