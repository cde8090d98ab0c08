import { readdir } from 'node:fs/promises'
import { versionFile, versionFolder } from '../../repository/layout.js'
import { scanModel } from '../../repository/scanner.js'
import { sameFingerprint, versionFingerprint } from '../../repository/version-file.js'
import type { ModelView } from '../versions/version-state.js'

/**
 * Is there a version newer than `version` on disk that has not been decided: new, or changed since
 * its verdict? Then a candidate `version` being read or gated is superseded: the newest wins.
 */
export async function newerCandidateExists(
  root: string,
  model: ModelView,
  version: number,
): Promise<boolean> {
  // Most checks find nothing newer, and the names alone can say so: one listing, no call per
  // version. Only a name that could be a newer version is worth the full listing's checks.
  const names = await readdir(model.dir).catch(() => [] as string[])
  if (!names.some((name) => (versionFolder(name) ?? versionFile(name) ?? 0) > version)) return false
  const scan = await scanModel(root, model.name, model.dir, [])
  for (const v of scan.versions) {
    if (v.version <= version) continue
    const r = model.versions.get(v.version)
    // Refused unread (no verdict to compare), or waiting for its smoke.json to be fixed: nothing to
    // decide until its files change.
    if (
      r &&
      !r.verdict &&
      (r.state.status === 'rejected' || (r.state.status === 'discovered' && r.state.waiting))
    )
      continue
    if (
      !r ||
      (!r.verdict && !r.rolledBack) ||
      !sameFingerprint(await versionFingerprint(v), r.verdictFingerprint)
    )
      return true
  }
  return false
}
