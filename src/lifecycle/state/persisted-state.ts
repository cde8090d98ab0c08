import type { ModelRegistry } from '../versions/model-registry.js'
import type { ModelView } from '../versions/version-state.js'
import type { PersistedModel, PersistedState } from './state-store.js'

/** The persisted form of a model: what a restart needs and nothing it can recompute. */
function persistModel(m: ModelView): PersistedModel {
  const versions: PersistedModel['versions'] = {}
  for (const r of m.versions.values()) {
    const v = r.verdict
    if (!v) continue
    versions[String(r.version)] = {
      sha256: v.sha256,
      verdict: v.kind,
      ...(v.unverified !== undefined && { unverified: v.unverified }),
      ...(v.stage !== undefined && { stage: v.stage }),
      ...(v.reason !== undefined && { reason: v.reason }),
      ...(v.message !== undefined && { message: v.message }),
      at: v.at,
      ...(v.runMs !== undefined && { runMs: Math.round(v.runMs * 1000) / 1000 }),
      ...(r.rolledBack &&
        r.rolledBack.sha256 === v.sha256 && {
          rolledBack: { reason: r.rolledBack.reason, at: r.rolledBack.at },
        }),
      ...(!r.onDisk && { missing: true }),
    }
  }
  return {
    active: m.active ? { version: m.active.version, sha256: m.active.sha256 } : null,
    retained: m.retained.map((v) => ({ version: v.version, sha256: v.sha256 })),
    activations: m.activations.slice(-64),
    versions,
    ...(m.probation && { probation: m.probation }),
    ...(m.rollout && {
      rollout: {
        version: m.rollout.version,
        sha256: m.rollout.sha256,
        mode: m.rollout.mode,
        startedAt: m.rollout.startedAt,
        ...(m.rollout.mode === 'canary' && { step: m.rollout.step }),
      },
    }),
  }
}

export function persistState(registry: ModelRegistry, previous: PersistedState): PersistedState {
  // Models that are gone from disk keep their record: a folder restored later finds its verdicts.
  const models = { ...previous.models }
  for (const m of registry.list()) models[m.name] = persistModel(m)
  const defaultModel = registry.recordedDefault ?? previous.defaultModel
  return { format: 1, ...(defaultModel !== undefined && { defaultModel }), models }
}
