import type { StateWriteFailure } from './state/state-persister.js'
import type { ModelView } from './versions/version-state.js'

export interface Readiness {
  readonly ready: boolean
  /**
   * state.json cannot be written (a full or read-only disk): what serves is not recorded, and a
   * restart would serve what was recorded last. Writes are retried; admin changes are refused.
   */
  readonly stateWriteFailing: boolean
  readonly stateWriteError?: StateWriteFailure
  readonly models: Record<
    string,
    {
      readonly active: number | null
      readonly status: 'serving' | 'loading' | 'failed' | 'empty' | 'unloaded'
    }
  >
}

/** What readiness needs of a model's pipeline: has its first load ended, is anything left to do? */
interface PipelineProgress {
  readonly judged: boolean
  readonly settled: boolean
}

/**
 * /readyz: ready once the first passes are over and no model is still loading. A model whose every
 * version was rejected does not hold readiness (it would take every other model out of service):
 * it is listed as failed.
 */
export function readinessOf(o: {
  readonly running: boolean
  readonly models: readonly ModelView[]
  readonly pipeline: (name: string) => PipelineProgress | undefined
  readonly stateWriteFailure: StateWriteFailure | undefined
}): Readiness {
  const models: Record<string, Readiness['models'][string]> = {}
  let ready = o.running
  for (const m of o.models) {
    const pipeline = o.pipeline(m.name)
    const status = m.active
      ? 'serving'
      : m.unloaded
        ? 'unloaded'
        : m.versions.size === 0
          ? 'empty'
          : !pipeline || (!pipeline.judged && !pipeline.settled) || hasCandidateInFlight(m)
            ? 'loading'
            : 'failed'
    if (status === 'loading') ready = false
    models[m.name] = { active: m.active?.version ?? null, status }
  }
  const failing = o.stateWriteFailure
  return {
    ready,
    stateWriteFailing: failing !== undefined,
    ...(failing && { stateWriteError: failing }),
    models,
  }
}

/**
 * Is a version of the model being read, gated or warmed right now? Once a model's first load is
 * over with nothing serving, it is `failed`, and only a version actually being decided makes it
 * `loading` again: a periodic re-listing does not.
 */
function hasCandidateInFlight(m: ModelView): boolean {
  for (const v of m.versions.values()) {
    const status = v.state.status
    if (status === 'loading' || status === 'validating' || status === 'warming') return true
  }
  return false
}
