import { InsufficientMemoryError } from '../../errors.js'
import { readVersionBytes, type VersionBytes } from '../../repository/read-version.js'
import { versionFingerprint } from '../../repository/version-file.js'
import type { LifecycleContext } from '../lifecycle-context.js'
import type { ModelVersions } from '../versions/model-versions.js'
import type { Promoter } from '../promotion/promoter.js'
import type { PersistedModel } from './state-store.js'

/**
 * At start, after the recorded verdicts are taken back (ModelVersions.recorded): serves the
 * recorded active version again if its bytes still match, then fills the retained window with the
 * recorded retained versions, all without a second gate. What cannot be restored is logged, and
 * the model's pass decides what serves instead.
 */
export async function restoreServing(
  ctx: LifecycleContext,
  versions: ModelVersions,
  promoter: Promoter,
  persisted: PersistedModel,
): Promise<void> {
  const active = persisted.active
  if (active) {
    const why = await restoreOne(ctx, versions, promoter, active, 'active')
    if (why) {
      ctx.logger.warn('restore_failed', {
        model: versions.name,
        version: active.version,
        reason: why,
      })
      void ctx.history.append({
        model: versions.name,
        version: active.version,
        sha256: active.sha256,
        event: 'restore_failed',
        trigger: 'startup',
        reason: why,
      })
    }
  }
  for (const ref of persisted.retained) {
    if (versions.retained.length >= versions.config.retain) break
    const why = await restoreOne(ctx, versions, promoter, ref, 'retained')
    if (why)
      ctx.logger.info('retained_not_restored', {
        model: versions.name,
        version: ref.version,
        reason: why,
      })
  }
}

/** Loads a recorded version without a gate if its bytes are the recorded ones; else says why not. */
async function restoreOne(
  ctx: LifecycleContext,
  versions: ModelVersions,
  promoter: Promoter,
  ref: { version: number; sha256: string },
  as: 'active' | 'retained',
): Promise<string | undefined> {
  const record = versions.versions.get(ref.version)
  if (!record?.onDisk) return 'its file is missing'
  if (record.rolledBack?.sha256 === ref.sha256 && as === 'retained') return 'it was rolled back'
  let bytes: VersionBytes
  try {
    bytes = await readVersionBytes(ctx.root, record.source, ctx.options.maxModelBytes)
  } catch (e) {
    return (e as Error).message
  }
  if (bytes.sha256 !== ref.sha256)
    return `its file changed (sha256 ${bytes.sha256}, recorded ${ref.sha256})`
  versions.vouched(record, await versionFingerprint(record.source))
  try {
    const served =
      as === 'active'
        ? (await promoter.serve(record, bytes, { trigger: 'startup' })) !== undefined
        : await promoter.retain(record, bytes)
    return served ? undefined : 'it no longer loads'
  } catch (e) {
    if (e instanceof InsufficientMemoryError) return e.message
    throw e
  }
}
