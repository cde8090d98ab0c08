import {
  type LiveFigures,
  pooledSnapshot,
  type WindowSample,
  windowSizes,
} from '../../metrics/live-figures.js'
import type { ModelView, ShadowTally } from '../versions/version-state.js'
import { judgeProbation, type RuleResult } from './probation-rules.js'

/** How a shadow's answers compared with the active version's so far. */
export interface ShadowFigures {
  readonly mirrored: number
  readonly agreed: number
  readonly failed: number
  readonly dropped: number
  /** agreed / mirrored (null before the first). */
  readonly agreement: number | null
  /** Mean over mirrored requests of the mean absolute difference of numeric outputs (null: none). */
  readonly meanAbsDiff: number | null
  /** Mirrored requests needed before it is judged. */
  readonly needed: number
  readonly min: number
}

export function shadowFigures(t: ShadowTally, needed: number, min: number): ShadowFigures {
  return {
    mirrored: t.compared,
    agreed: t.agreed,
    failed: t.failed,
    dropped: t.dropped,
    agreement: t.compared === 0 ? null : t.agreed / t.compared,
    meanAbsDiff: t.absDiffCount === 0 ? null : t.absDiffSum / t.absDiffCount,
    needed,
    min,
  }
}

/**
 * The running canary step's rules: the probation rules on the candidate's figures since the step
 * began, against the active version's over the same period (its latency over as many requests as
 * the candidate's; undefined when no canary runs), every replica's figures pooled (`live.peers`).
 */
export function canaryRules(model: ModelView, live: LiveFigures): RuleResult[] | undefined {
  const r = model.rollout
  const local = canarySamples(model, live)
  if (!r || !local) return undefined
  const theirs = live.peers?.canary(model.name, r.version, r.sha256, r.step)
  const candidate = pooledSnapshot([local.candidate, ...(theirs?.candidate ?? [])])
  const active = pooledSnapshot([local.active, ...(theirs?.active ?? [])])
  return judgeProbation(model.config.probation, candidate, {
    p99Ms: active.p99Ms,
    accuracy: active.accuracy,
    mae: active.mae,
  })
}

/** This replica's figures of the canary step, both sides: what it publishes for the gatekeeper. */
export function canarySamples(
  model: ModelView,
  live: LiveFigures,
): { readonly candidate: WindowSample; readonly active: WindowSample } | undefined {
  const r = model.rollout
  if (r?.mode !== 'canary' || !r.marks) return undefined
  const sizes = windowSizes(model.config.feedback.window)
  const candidate = live.window(model.name, r.version, sizes).sample(r.marks.candidate)
  const activeWindow = live.window(model.name, r.against, sizes)
  // The active version's last requests of the step, as many as the candidate served: a p99 by
  // nearest rank over a larger sample sits lower in the tail, which would hold a canary at 10% to
  // a limit its own sample size alone breaks.
  const sameCount = activeWindow.mark().requests - candidate.requests
  const active = activeWindow.sample({
    ...r.marks.active,
    requests: Math.max(r.marks.active.requests, sameCount),
  })
  return { candidate, active }
}
