import type { LiveFigures } from '../../metrics/live-figures.js'
import type { ModelVersions } from '../versions/model-versions.js'
import { describeBreach, probationRules, type RuleResult } from './probation-rules.js'

export interface ProbationWatchOptions {
  readonly live: LiveFigures
  /** Every model's versions. */
  readonly models: () => Iterable<ModelVersions>
  /** Swaps the previous version back (AdminOperations.rollback with the breach). */
  readonly rollBack: (
    model: string,
    o: { version: number; from: number; reason: string; auto: RuleResult },
  ) => Promise<unknown>
}

/**
 * Judges every running probation on a timer: a breached rule rolls the version back at once; a
 * probation whose window is over passes. One judgement per model at a time, and nothing here
 * awaits on the request path: figures are read from the live windows.
 */
export class ProbationWatch {
  readonly #o: ProbationWatchOptions
  readonly #rollingBack = new Set<string>()

  constructor(options: ProbationWatchOptions) {
    this.#o = options
  }

  /** Judges every running probation now. */
  check(): void {
    for (const versions of this.#o.models()) {
      const p = versions.probation
      if (!p || this.#rollingBack.has(versions.name)) continue
      const rules = probationRules(versions, this.#o.live)!
      const breach = rules.find((r) => r.status === 'breached')
      if (breach) void this.#rollBack(versions, p.version, p.previous, breach)
      else if (Date.now() >= Date.parse(p.endsAt))
        versions.probationPassed(
          rules,
          rules.some((r) => r.status === 'waiting' || r.status === 'no_baseline'),
        )
    }
  }

  async #rollBack(
    versions: ModelVersions,
    from: number,
    to: number,
    breach: RuleResult,
  ): Promise<void> {
    this.#rollingBack.add(versions.name)
    try {
      await this.#o.rollBack(versions.name, {
        version: to,
        from,
        reason: `probation: ${describeBreach(breach)}`,
        auto: breach,
      })
    } catch (e) {
      // Still this probation (nothing else swapped meanwhile): it ends, with why, for a person.
      if (versions.probation?.version === from)
        versions.probationFailed(breach, (e as Error).message)
    } finally {
      this.#rollingBack.delete(versions.name)
    }
  }
}
