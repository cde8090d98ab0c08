import type { LiveFigures } from '../../metrics/live-figures.js'
import type { ModelVersions } from '../versions/model-versions.js'
import { probationRules, type RuleResult } from './probation-rules.js'

export interface ProbationWatchOptions {
  readonly intervalMs: number
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
  #timer: NodeJS.Timeout | undefined

  constructor(options: ProbationWatchOptions) {
    this.#o = options
  }

  start(): void {
    this.#timer = setInterval(() => this.check(), this.#o.intervalMs)
    this.#timer.unref()
  }

  close(): void {
    clearInterval(this.#timer)
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
        reason: `probation: ${describe(breach)}`,
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

/** "accuracy 0.61 below 0.87 over 80 feedback items" */
function describe(r: RuleResult): string {
  const n = (x: number | null) => (x === null ? 'none' : String(Math.round(x * 10_000) / 10_000))
  const over = r.rule === 'accuracy' || r.rule === 'mae' ? 'feedback items' : 'requests'
  const side = r.rule === 'accuracy' ? 'below' : 'above'
  return `${r.rule} ${n(r.observed)} ${side} ${n(r.limit)} over ${r.sample} ${over}`
}
