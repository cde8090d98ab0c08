import type { ModelView, VersionView } from './version-state.js'

/**
 * Which version goes where: pure decisions over a model's records, no I/O, so each rule is tested
 * on its own (the rules: docs/architecture.md, Version states and transitions).
 */

/**
 * Versions the pipeline should look at now, newest first: roll-forward only (newer than the
 * active version; any version when nothing serves), plus the active version itself, whose file may
 * have been replaced in place. Which of them are settled (rejected, rolled back, unchanged) is for
 * the pipeline to find out from their bytes.
 */
export function candidateOrder(model: ModelView): VersionView[] {
  const active = model.active
  return [...model.versions.values()]
    .filter((r) => r.onDisk && (!active || r.version >= active.version))
    .sort((a, b) => b.version - a.version)
}

/** True when the version's current bytes already have a verdict that keeps it out of auto-promotion. */
export function isSettled(record: VersionView, sha256: string): boolean {
  if (record.rolledBack?.sha256 === sha256) return true
  return record.verdict?.kind === 'rejected' && record.verdict.sha256 === sha256
}

/**
 * The default rollback target: the most recent earlier activation that can still serve (loaded, or
 * on disk with a passing verdict and not rolled back).
 */
export function previousActivation(model: ModelView): number | undefined {
  const current = model.active?.version
  for (let i = model.activations.length - 1; i >= 0; i--) {
    const v = model.activations[i]!
    if (v === current) continue
    const record = model.versions.get(v)
    if (model.retained.some((r) => r.version === v)) return v
    if (
      record?.onDisk &&
      record.verdict?.kind === 'passed' &&
      record.rolledBack?.sha256 !== record.verdict.sha256
    )
      return v
  }
  return undefined
}

/** The activations with `version` as the newest (each version appears once, most recent last). */
export function withActivation(activations: readonly number[], version: number): number[] {
  return [...activations.filter((v) => v !== version), version].slice(-64)
}

/** After a rollback from `from`: it is no longer an activation to go back to. */
export function withoutActivation(activations: readonly number[], from: number): number[] {
  return activations.filter((v) => v !== from)
}
