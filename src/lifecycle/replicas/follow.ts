import { InsufficientMemoryError } from '../../errors.js'
import { windowSizes } from '../../metrics/live-figures.js'
import { readVersionBytes, type VersionBytes } from '../../repository/read-version.js'
import type { LifecycleContext } from '../lifecycle-context.js'
import type { Promoter } from '../promotion/promoter.js'
import type { PersistedModel } from '../state/state-store.js'
import type { LoadedVersion } from '../versions/loaded-version.js'
import type { ModelVersions } from '../versions/model-versions.js'

/**
 * A follower brings one model in line with state.json, the desired state the gatekeeper writes:
 * the version it names active serves here too (a pointer swap when it is loaded here, else its file
 * is read, its sha256 checked against the recorded one, its sessions created and warmed, then
 * swapped in, with no second gate); a canary's candidate answers its share at its step; retained
 * versions the gatekeeper let go leave. What cannot be followed (a file that differs from the
 * recorded bytes, memory) is said once and tried again on the next change or tick: the version
 * serving here serves on, and `GET /replicas` shows this replica behind.
 *
 * Returns why the model is not in line, or undefined when it is.
 */
export async function followModel(
  ctx: LifecycleContext,
  versions: ModelVersions,
  promoter: Promoter,
  persisted: PersistedModel,
): Promise<string | undefined> {
  if (versions.unloaded) return undefined // V2 unload on this replica: nothing loads until `load`
  const want = persisted.active
  let behind: string | undefined
  if (want && !matches(versions.active, want)) {
    const previous = versions.active
    const rolledBack = previous && persisted.versions[String(previous.version)]?.rolledBack
    const loaded = [...versions.retained, versions.rollout?.candidate].find((v) => matches(v, want))
    const record = versions.versions.get(want.version)
    // A promotion's figures start afresh here too (the gatekeeper's did): its probation pools them.
    if (!rolledBack)
      ctx.live.restart(versions.name, want.version, windowSizes(versions.config.feedback.window))
    if (loaded && record) {
      versions.swap(record, loaded, {
        trigger: 'replica',
        restored: true,
        ...(rolledBack && { rollbackReason: rolledBack.reason }),
      })
    } else {
      behind = await serveRecorded(ctx, versions, promoter, want, {
        as: 'active',
        ...(rolledBack && { rollbackReason: rolledBack.reason }),
      })
    }
  }
  const rollout = persisted.rollout
  const current = versions.rollout
  if (current && !(rollout && matches(current.candidate, rollout)))
    versions.rolloutDropped('the gatekeeper ended it')
  // A shadow's copies run on the gatekeeper alone: followers answer with the active version anyway.
  if (rollout?.mode === 'canary' && !behind) {
    if (!versions.rollout)
      behind = await serveRecorded(ctx, versions, promoter, rollout, { as: 'rollout' })
    const step = rollout.step ?? 0
    for (let r = versions.rollout; r && r.step < step; r = versions.rollout)
      versions.rolloutStepped([])
  }
  versions.retainOnly(new Set(persisted.retained.map((v) => `${v.version}:${v.sha256}`)))
  return behind
}

function matches(
  loaded: LoadedVersion | undefined,
  ref: { readonly version: number; readonly sha256: string },
): boolean {
  return loaded !== undefined && loaded.version === ref.version && loaded.sha256 === ref.sha256
}

/** Reads, checks and serves a version the gatekeeper passed; says why not when it cannot. */
async function serveRecorded(
  ctx: LifecycleContext,
  versions: ModelVersions,
  promoter: Promoter,
  ref: { readonly version: number; readonly sha256: string },
  o: { as: 'active' | 'rollout'; rollbackReason?: string },
): Promise<string | undefined> {
  const record = versions.versions.get(ref.version)
  if (!record?.onDisk) return `version ${ref.version}: its file is not in the models directory here`
  let bytes: VersionBytes
  try {
    bytes = await readVersionBytes(ctx.root, record.source, ctx.options.maxModelBytes)
  } catch (e) {
    return `version ${ref.version}: ${(e as Error).message}`
  }
  if (bytes.sha256 !== ref.sha256)
    return `version ${ref.version}: its file here is not the bytes the gatekeeper passed (sha256 ${bytes.sha256}, recorded ${ref.sha256})`
  try {
    const served = await promoter.serve(record, bytes, {
      trigger: 'replica',
      as: o.as,
      ...(o.rollbackReason !== undefined && { rollbackReason: o.rollbackReason }),
    })
    return served ? undefined : `version ${ref.version} no longer loads here`
  } catch (e) {
    if (e instanceof InsufficientMemoryError) return `version ${ref.version}: ${e.message}`
    throw e
  }
}
