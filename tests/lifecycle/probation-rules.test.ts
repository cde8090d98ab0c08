import { describe, expect, it } from 'vitest'
import {
  judgeProbation,
  type RuleName,
  type RuleResult,
} from '../../src/lifecycle/promotion/probation-rules.js'
import type { Baseline } from '../../src/lifecycle/versions/version-state.js'
import { type LiveSnapshot, LiveWindow } from '../../src/metrics/live-figures.js'
import { DEFAULT_MODEL_CONFIG } from '../../src/repository/model-config.js'

const defaults = DEFAULT_MODEL_CONFIG.probation
type ProbationConfig = typeof defaults

/** The new version's figures: no sample unless given. */
function figures(given: Partial<LiveSnapshot> = {}): LiveSnapshot {
  return { ...new LiveWindow().snapshot(), ...given }
}

const noBaseline: Baseline = { p99Ms: null, accuracy: null, mae: null }

/** The one result for `name`, which must be there exactly once. */
function judge(
  name: RuleName,
  f: Partial<LiveSnapshot>,
  baseline: Partial<Baseline> = {},
  config: Partial<ProbationConfig> = {},
): RuleResult {
  const results = judgeProbation({ ...defaults, ...config }, figures(f), {
    ...noBaseline,
    ...baseline,
  })
  const found = results.filter((r) => r.rule === name)
  expect(found, JSON.stringify(results)).toHaveLength(1)
  return found[0]!
}

/** Enough requests for the request rules, with this error rate and p99. */
const served = (errorRate: number, p99Ms: number | null = 10): Partial<LiveSnapshot> => ({
  requests: defaults.minRequests,
  errorRate,
  p99Ms,
})

describe('judgeProbation', () => {
  it('judges the error rate, the latency and the accuracy by default', () => {
    const rules = judgeProbation(defaults, figures(), noBaseline).map((r) => r.rule)
    expect(rules).toEqual(['error_rate', 'latency', 'accuracy'])
  })

  describe('error rate', () => {
    it('waits for minRequests requests', () => {
      expect(judge('error_rate', { requests: 99, errorRate: 1 })).toEqual({
        rule: 'error_rate',
        observed: 1,
        limit: 0.01,
        sample: 99,
        needed: 100,
        status: 'waiting',
      })
    })

    it('is ok at the limit and breached strictly above it', () => {
      expect(judge('error_rate', served(0)).status).toBe('ok')
      expect(judge('error_rate', served(0.01)).status).toBe('ok')
      expect(judge('error_rate', served(0.02))).toMatchObject({
        status: 'breached',
        observed: 0.02,
        limit: 0.01,
        sample: 100,
      })
    })

    it('takes minRequests and maxErrorRate from the config', () => {
      const config = { minRequests: 10, maxErrorRate: 0.5 }
      expect(judge('error_rate', { requests: 10, errorRate: 0.5 }, {}, config).status).toBe('ok')
      expect(judge('error_rate', { requests: 10, errorRate: 0.6 }, {}, config).status).toBe(
        'breached',
      )
      expect(judge('error_rate', { requests: 9, errorRate: 0.6 }, {}, config).status).toBe(
        'waiting',
      )
    })

    it('is judged without a baseline', () => {
      expect(judge('error_rate', served(0)).status).toBe('ok')
    })
  })

  describe('latency', () => {
    it('has no baseline when the previous version had no p99', () => {
      expect(judge('latency', served(0, 1e9))).toMatchObject({
        status: 'no_baseline',
        limit: null,
        observed: 1e9,
      })
    })

    it('limits the p99 to latencyRatio times the previous p99', () => {
      expect(judge('latency', served(0, 20), { p99Ms: 10 })).toMatchObject({
        status: 'ok',
        limit: 20,
        observed: 20,
      })
      expect(judge('latency', served(0, 20.5), { p99Ms: 10 }).status).toBe('breached')
      expect(judge('latency', served(0, 31), { p99Ms: 10 }, { latencyRatio: 3 })).toMatchObject({
        status: 'breached',
        limit: 30,
      })
    })

    it('waits for minRequests requests', () => {
      expect(judge('latency', { requests: 99, p99Ms: 1e9 }, { p99Ms: 10 })).toMatchObject({
        status: 'waiting',
        sample: 99,
        needed: 100,
      })
    })

    it('waits while every request failed (no p99 yet)', () => {
      expect(judge('latency', served(1, null), { p99Ms: 10 }).status).toBe('waiting')
    })
  })

  describe('accuracy', () => {
    const labelled = (accuracy: number, labels = defaults.minFeedback) => ({
      labels,
      feedback: labels,
      accuracy,
    })

    it('has no baseline without a previous accuracy or minAccuracy', () => {
      expect(judge('accuracy', labelled(0))).toMatchObject({ status: 'no_baseline', limit: null })
    })

    it('allows a drop of at most accuracyDrop from the previous accuracy', () => {
      // Binary fractions, so the limit is exact: 0.75 - 0.25 = 0.5.
      const config = { accuracyDrop: 0.25 }
      expect(judge('accuracy', labelled(0.5), { accuracy: 0.75 }, config)).toMatchObject({
        status: 'ok',
        limit: 0.5,
      })
      expect(judge('accuracy', labelled(0.49), { accuracy: 0.75 }, config).status).toBe('breached')
      expect(judge('accuracy', labelled(0.9), { accuracy: 0.75 }, config).status).toBe('ok')
    })

    it('uses the default drop of 0.05', () => {
      const r = judge('accuracy', labelled(0.8), { accuracy: 0.9 })
      expect(r.limit).toBeCloseTo(0.85, 12)
      expect(r.status).toBe('breached')
      expect(judge('accuracy', labelled(0.86), { accuracy: 0.9 }).status).toBe('ok')
    })

    it('clamps the limit at 0', () => {
      expect(
        judge('accuracy', labelled(0), { accuracy: 0.1 }, { accuracyDrop: 0.5 }),
      ).toMatchObject({ status: 'ok', limit: 0 })
    })

    it('waits for minFeedback labels', () => {
      expect(judge('accuracy', labelled(0, 49), { accuracy: 1 })).toMatchObject({
        status: 'waiting',
        sample: 49,
        needed: 50,
      })
      expect(judge('accuracy', labelled(0, 5), { accuracy: 1 }, { minFeedback: 5 }).status).toBe(
        'breached',
      )
    })

    it('holds to minAccuracy when set, even without a previous accuracy', () => {
      const config = { minAccuracy: 0.5 }
      expect(judge('accuracy', labelled(0.5), {}, config)).toMatchObject({
        status: 'ok',
        limit: 0.5,
      })
      expect(judge('accuracy', labelled(0.49), {}, config).status).toBe('breached')
      // It replaces the relative rule: a far higher previous accuracy does not matter.
      expect(judge('accuracy', labelled(0.5), { accuracy: 1 }, config)).toMatchObject({
        status: 'ok',
        limit: 0.5,
      })
    })

    it('counts labels, not all feedback, as its sample', () => {
      expect(
        judge('accuracy', { labels: 10, feedback: 60, accuracy: 0 }, { accuracy: 1 }).status,
      ).toBe('waiting')
    })
  })

  describe('mae', () => {
    const valued = (mae: number, values = defaults.minFeedback) => ({
      values,
      feedback: values,
      mae,
    })

    it('replaces accuracy when the new version has value feedback', () => {
      const rules = judgeProbation(defaults, figures(valued(1)), { ...noBaseline, mae: 1 })
      expect(rules.map((r) => r.rule)).toEqual(['error_rate', 'latency', 'mae'])
    })

    it('replaces accuracy when only the previous version had value feedback', () => {
      expect(judge('mae', {}, { mae: 1 })).toMatchObject({ status: 'waiting', sample: 0 })
    })

    it('is not chosen when the new version has labels and no values', () => {
      expect(judge('accuracy', { labels: 1, feedback: 1, accuracy: 1 }, { mae: 1 }).rule).toBe(
        'accuracy',
      )
    })

    it('limits the mae to maeRatio times the previous mae', () => {
      expect(judge('mae', valued(3), { mae: 2 })).toMatchObject({ status: 'ok', limit: 3 })
      expect(judge('mae', valued(3.01), { mae: 2 }).status).toBe('breached')
      expect(judge('mae', valued(5), { mae: 2 }, { maeRatio: 2 })).toMatchObject({
        status: 'breached',
        limit: 4,
      })
    })

    it('has no baseline when the previous version had no mae', () => {
      expect(judge('mae', valued(100))).toMatchObject({ status: 'no_baseline', limit: null })
    })

    it('waits for minFeedback values', () => {
      expect(judge('mae', valued(100, 49), { mae: 1 })).toMatchObject({
        status: 'waiting',
        sample: 49,
        needed: 50,
      })
    })
  })
})
