import type { ModelConfig } from '../../repository/model-config.js'
import type { SmokeSet } from '../../repository/smoke-file.js'
import type { BatchingDecision } from '../../runtime/batch-check.js'
import type { Engine } from '../../runtime/engine.js'
import { decodeFeeds, type Feeds } from '../../runtime/feeds.js'
import type { Signature } from '../../runtime/signature.js'
import { warmUpRuns, type WarmUpOutcome, type WarmUpPlan } from '../../runtime/warm-up.js'
import type { StageResult } from './gate-types.js'

/**
 * How a serving session is warmed: `warmup.runs` runs at the batch sizes serving will use
 * (single requests, and full batches when the version batches), unless model.json names them.
 */
export function warmupPlan(
  config: ModelConfig,
  batching: BatchingDecision,
): { runs: number; batchSizes: readonly number[] } {
  return {
    runs: config.warmup.runs,
    batchSizes:
      config.warmup.batchSizes ?? (batching.enabled ? [1, config.batching.maxBatchSize] : [1]),
  }
}

/** The inputs of the first smoke cases, decoded for `signature`: warm-up inputs for a model that refuses zeros. */
export function smokeFeeds(smoke: SmokeSet, signature: Signature | undefined): Feeds[] {
  if (!signature) return []
  const feeds: Feeds[] = []
  for (const c of smoke.cases.slice(0, 4)) {
    try {
      feeds.push(decodeFeeds(c.inputs, signature))
    } catch {
      // a case that does not fit was already reported by the smoke stage
    }
  }
  return feeds
}

/**
 * The last stage, on the sessions that will serve: warmed so the first real request does not pay
 * for onnxruntime's first-run allocations (warmUpRuns). Failing both the synthetic and the smoke
 * inputs is a warning, not a rejection (the gate has already run the model).
 */
export async function warmUp(session: Engine, o: WarmUpPlan): Promise<StageResult> {
  return warmupStage(o, await warmUpRuns(session, o))
}

/** The warm-up stage's report on what warming did, on this thread or in a worker. */
export function warmupStage(
  o: { readonly runs: number; readonly batchSizes: readonly number[] },
  warmed: WarmUpOutcome,
): StageResult {
  if (o.runs === 0)
    return {
      stage: 'warmup',
      status: 'skipped',
      ms: 0,
      reason: 'not_configured',
      message: 'warmup.runs is 0',
    }
  const { done, ms, problem } = warmed
  if (done === 0) {
    return {
      stage: 'warmup',
      status: 'passed',
      ms,
      reason: 'warmup_failed',
      message: `warm-up runs failed (${problem}); the first requests may be slower`,
    }
  }
  return {
    stage: 'warmup',
    status: 'passed',
    ms,
    message: `${done} run(s) at batch size(s) ${o.batchSizes.join(', ')}`,
  }
}
