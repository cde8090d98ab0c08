import type { LiveMark } from '../../metrics/live-figures.js'
import type { Rollout, RolloutSettings, ShadowTally, VersionState } from './version-state.js'

/** The pure parts of a rollout's record: a fresh tally, a canary step, the candidate's state. */

export function emptyTally(): ShadowTally {
  return {
    compared: 0,
    agreed: 0,
    failed: 0,
    dropped: 0,
    absDiffSum: 0,
    absDiffCount: 0,
    inFlight: 0,
  }
}

/** Step `i` of a rollout begun at `now`: a canary's share and end, and where both windows stand. */
export function rolloutStep(
  settings: RolloutSettings,
  i: number,
  now: number,
  marks: () => { readonly candidate: LiveMark; readonly active: LiveMark },
): Pick<Rollout, 'step' | 'percent' | 'stepStartedAt' | 'stepEndsAt' | 'marks'> {
  const stepStartedAt = new Date(now).toISOString()
  if (settings.mode !== 'canary')
    return { step: 0, percent: 0, stepStartedAt, stepEndsAt: undefined, marks: undefined }
  return {
    step: i,
    percent: settings.steps[i]!,
    stepStartedAt,
    stepEndsAt: new Date(now + settings.stepSeconds * 1000).toISOString(),
    marks: marks(),
  }
}

/** The state of a rollout's candidate. */
export function rolloutState(r: Rollout): VersionState {
  return r.mode === 'shadow' ? { status: 'shadow' } : { status: 'canary', percent: r.percent }
}
