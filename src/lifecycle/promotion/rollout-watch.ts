import type { LiveFigures } from '../../metrics/live-figures.js'
import type { ModelVersions } from '../versions/model-versions.js'
import type { Rollout } from '../versions/version-state.js'
import { describeBreach } from './probation-rules.js'
import { canaryRules, shadowFigures } from './rollout-rules.js'

export interface RolloutWatchOptions {
  readonly live: LiveFigures
  /** Every model's versions. */
  readonly models: () => Iterable<ModelVersions>
}

/**
 * Judges every running rollout on a timer. A shadow, once it has its mirrored requests, is promoted
 * if it agreed often enough and rejected if not. A canary step breached by a probation rule sends
 * every request back to the active version and marks the candidate rolled back; a step that ran
 * its time without a breach gives way to the next, and the last to a full promotion. Each decision
 * is one synchronous transition of the model's versions; nothing here is on the request path.
 */
export class RolloutWatch {
  readonly #o: RolloutWatchOptions

  constructor(options: RolloutWatchOptions) {
    this.#o = options
  }

  check(): void {
    for (const versions of this.#o.models()) {
      const r = versions.rollout
      if (r?.settings.mode === 'shadow') this.#shadow(versions, r)
      else if (r) this.#canary(versions, r)
    }
  }

  #shadow(versions: ModelVersions, r: Rollout): void {
    if (r.settings.mode !== 'shadow') return
    const { minRequests, agreement } = r.settings
    const f = shadowFigures(r.shadow, minRequests, agreement.min)
    if (f.mirrored < minRequests) return
    const shadow = { ...f }
    if (f.agreement! >= agreement.min) {
      versions.rolloutPassed({ shadow })
      return
    }
    versions.rolloutFailed('rejected', 'shadow_disagreement', {
      event: 'rejected',
      trigger: 'rollout',
      message: `${f.agreed}/${f.mirrored} mirrored requests agreed with version ${r.against} (${round(f.agreement!)}; min ${agreement.min})`,
      shadow,
    })
  }

  #canary(versions: ModelVersions, r: Rollout): void {
    if (r.settings.mode !== 'canary') return
    const rules = canaryRules(versions, this.#o.live)!
    const breach = rules.find((x) => x.status === 'breached')
    if (breach) {
      versions.rolloutFailed('rolled_back', `canary_failed:${breach.rule}`, {
        event: 'rollout_failed',
        message: `step ${r.step + 1} at ${r.percent}%: ${describeBreach(breach)}`,
        rule: breach.rule,
        observed: breach.observed,
        limit: breach.limit,
        sample: breach.sample,
        step: r.step,
        percent: r.percent,
      })
      return
    }
    if (Date.now() < Date.parse(r.stepEndsAt!)) return
    if (r.step + 1 < r.settings.steps.length) versions.rolloutStepped(rules)
    else versions.rolloutPassed({ rules })
  }
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000
}
