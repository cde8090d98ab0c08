import {
  type LiveFigures,
  type LiveSnapshot,
  pooledSnapshot,
  type WindowSample,
  windowSizes,
} from '../../metrics/live-figures.js'
import type { ModelConfig } from '../../repository/model-config.js'
import type { Baseline, ModelView } from '../versions/version-state.js'

type ProbationConfig = ModelConfig['probation']

export type RuleName = 'error_rate' | 'latency' | 'accuracy' | 'mae'

/** One rule, as it stands: judged only once its sample is large enough. */
export interface RuleResult {
  readonly rule: RuleName
  readonly observed: number | null
  readonly limit: number | null
  /** Requests or feedback items the new version has for this rule. */
  readonly sample: number
  /** The sample size at which it is judged. */
  readonly needed: number
  /**
   * `waiting` for its sample, `ok`, `breached`, or `no_baseline` (a relative rule whose previous
   * version had no figure to compare with: never judged).
   */
  readonly status: 'waiting' | 'ok' | 'breached' | 'no_baseline'
}

/**
 * The probation rules against the new version's live figures: its error rate, its p99 against the
 * previous version's (`latencyRatio`), and its accuracy (a drop of at most `accuracyDrop`, or at
 * least `minAccuracy`) or, for regression feedback, its MAE (at most `maeRatio` times the previous).
 * Accuracy is the rule unless the feedback is values (the new version's, or else the previous's).
 */
export function judgeProbation(
  config: ProbationConfig,
  figures: LiveSnapshot,
  baseline: Baseline,
): RuleResult[] {
  const { minRequests, minFeedback } = config
  const rules: RuleResult[] = [
    rule(
      'error_rate',
      figures.errorRate,
      config.maxErrorRate,
      figures.requests,
      minRequests,
      'max',
    ),
    rule(
      'latency',
      figures.p99Ms,
      baseline.p99Ms === null ? null : baseline.p99Ms * config.latencyRatio,
      figures.requests,
      minRequests,
      'max',
    ),
  ]
  const values = figures.values > 0 || (figures.labels === 0 && baseline.mae !== null)
  if (values) {
    const limit = baseline.mae === null ? null : baseline.mae * config.maeRatio
    rules.push(rule('mae', figures.mae, limit, figures.values, minFeedback, 'max'))
  } else {
    const limit =
      config.minAccuracy ??
      (baseline.accuracy === null ? null : Math.max(0, baseline.accuracy - config.accuracyDrop))
    rules.push(rule('accuracy', figures.accuracy, limit, figures.labels, minFeedback, 'min'))
  }
  return rules
}

/**
 * The model's running probation, each rule as it stands now on the version's live window (what the
 * watch judges and `GET /models/{name}` shows); undefined when none runs.
 */
export function probationRules(model: ModelView, live: LiveFigures): RuleResult[] | undefined {
  const p = model.probation
  const local = probationSample(model, live)
  if (!p || !local) return undefined
  const theirs = live.peers?.probation(model.name, p.version, p.sha256) ?? []
  return judgeProbation(model.config.probation, pooledSnapshot([local, ...theirs]), p.baseline)
}

/** This replica's figures of the version on probation: what it publishes for the gatekeeper. */
export function probationSample(model: ModelView, live: LiveFigures): WindowSample | undefined {
  const p = model.probation
  if (!p) return undefined
  return live.window(model.name, p.version, windowSizes(model.config.feedback.window)).sample()
}

function rule(
  name: RuleName,
  observed: number | null,
  limit: number | null,
  sample: number,
  needed: number,
  bound: 'max' | 'min',
): RuleResult {
  const base = { rule: name, observed, limit, sample, needed }
  if (limit === null) return { ...base, status: 'no_baseline' }
  if (sample < needed || observed === null) return { ...base, status: 'waiting' }
  const breached = bound === 'max' ? observed > limit : observed < limit
  return { ...base, status: breached ? 'breached' : 'ok' }
}

/** "accuracy 0.61 below 0.87 over 80 feedback items" */
export function describeBreach(r: RuleResult): string {
  const n = (x: number | null) => (x === null ? 'none' : String(Math.round(x * 10_000) / 10_000))
  const over = r.rule === 'accuracy' || r.rule === 'mae' ? 'feedback items' : 'requests'
  const side = r.rule === 'accuracy' ? 'below' : 'above'
  return `${r.rule} ${n(r.observed)} ${side} ${n(r.limit)} over ${r.sample} ${over}`
}
