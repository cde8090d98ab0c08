import type { ModelView, VersionView } from '../lifecycle/versions/version-state.js'

/**
 * What a restart would serve, told from the records alone (no I/O): the recorded active version
 * comes back only if its file still holds the bytes that serve; otherwise the newest version on
 * disk whose bytes have a passing verdict serves, unless a newer one without a verdict is gated
 * first. Shown in GET /models/{name} so the API says what the log said when a file changed.
 */
export interface RestartOutlook {
  /** The version a restart would serve; null when it cannot be told without a gate, or none would. */
  readonly active: number | null
  readonly why: string
}

export function restartOutlook(m: ModelView): RestartOutlook {
  const active = m.active
  if (!active)
    return { active: null, why: 'nothing serves now: a restart gates what is on disk, as now' }
  const record = m.versions.get(active.version)
  const problem = fileProblem(active.version, active.sha256, record)
  if (problem === undefined)
    return {
      active: active.version,
      why: `version ${active.version} is restored: its file holds the bytes that serve`,
    }
  const newest = [...m.versions.values()]
    .filter((r) => r.onDisk && r.version !== active.version)
    .sort((a, b) => b.version - a.version)
  for (const r of newest) {
    const v = r.verdict
    if (!v)
      return {
        active: null,
        why: `${problem}; version ${r.version} has no verdict yet and would be gated first`,
      }
    if (v.kind === 'passed' && r.rolledBack?.sha256 !== v.sha256)
      return {
        active: r.version,
        why: `${problem}; version ${r.version}, the newest with a passing verdict, would serve`,
      }
  }
  return { active: null, why: `${problem}; no other version on disk has a passing verdict` }
}

/** Why the serving bytes of `version` would not be restored, or undefined if they would. */
export function fileProblem(
  version: number,
  servingSha256: string,
  record: VersionView | undefined,
): string | undefined {
  if (!record?.onDisk)
    return `version ${version}'s file is gone: it serves from memory and is not restored`
  const v = record.verdict
  if (v && v.sha256 !== servingSha256) {
    const verdict = v.kind === 'rejected' ? `rejected (${v.reason ?? 'rejected'})` : 'passed'
    return `version ${version}'s file was replaced by other bytes, ${verdict}: it serves the old bytes from memory and they are not restored`
  }
  return undefined
}
