import type { ModelConfig } from '../../repository/model-config.js'
import type { SmokeSet } from '../../repository/smoke-file.js'
import type { BatchingDecision } from '../../runtime/batch-check.js'
import type { Engine } from '../../runtime/engine.js'
import { decodeFeeds } from '../../runtime/feeds.js'
import type { Feeds } from '../../runtime/session.js'
import type { Signature } from '../../runtime/signature.js'
import { syntheticFeeds } from '../../runtime/synthetic-feeds.js'
import { oversizedSyntheticInput } from '../../runtime/synthetic-input.js'
import type { StageResult } from './gate-types.js'

/**
 * How a serving session is warmed: `warmup.runs` runs at the batch sizes serving will use
 * (single requests, and full batches when the version batches), unless model.json names them.
 */
export function warmupPlan(config: ModelConfig, batching: BatchingDecision): { runs: number; batchSizes: readonly number[] } {
  return {
    runs: config.warmup.runs,
    batchSizes: config.warmup.batchSizes ?? (batching.enabled ? [1, config.batching.maxBatchSize] : [1]),
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
 * The last stage, on the sessions that will serve: `runs` runs at each batch size on each of them
 * (a version in workers runs as many at once as it has workers, one per idle worker), so the first
 * real request does not pay for onnxruntime's first-run allocations. Each run yields to the event
 * loop: requests on the active version keep flowing while a candidate warms up.
 * A model that refuses the synthetic input is warmed with its smoke inputs instead; failing both
 * is a warning, not a rejection (the gate has already run the model).
 */
export async function warmUp(
  session: Engine,
  o: { readonly runs: number; readonly batchSizes: readonly number[]; readonly fallbackFeeds: readonly Feeds[] },
): Promise<StageResult> {
  const t = performance.now()
  if (o.runs === 0) return { stage: 'warmup', status: 'skipped', ms: 0, reason: 'not_configured', message: 'warmup.runs is 0' }
  const outputs = session.signature.outputs.map((x) => x.name)
  let done = 0
  let problem: string | undefined
  // Synthesized inputs are made anew for each run and handed over whole: a worker takes their
  // buffers, the main thread never copies them (one can be up to SYNTHETIC_INPUT_MAX_BYTES).
  // Smoke inputs (small, decoded once) are copied for each run.
  const runAll = async (feeds: () => Feeds, handOver: boolean) => {
    try {
      for (let i = 0; i < o.runs; i++) {
        // run() yields to the event loop on its own (it resolves via setImmediate).
        await Promise.all(Array.from({ length: session.concurrency }, () => session.run(feeds(), outputs, { handOver })))
        done++
      }
    } catch (e) {
      problem ??= (e as Error).message
    }
  }
  for (const batch of o.batchSizes) {
    // Never allocated: a model whose fixed dims ask for more memory than a request could carry.
    const tooLarge = oversizedSyntheticInput(session.signature, batch)
    if (tooLarge) problem ??= tooLarge
    else await runAll(() => syntheticFeeds(session.signature, batch), true)
  }
  if (done === 0) for (const feeds of o.fallbackFeeds.slice(0, 4)) await runAll(() => feeds, false)
  const ms = performance.now() - t
  if (done === 0) {
    return { stage: 'warmup', status: 'passed', ms, reason: 'warmup_failed', message: `warm-up runs failed (${problem}); the first requests may be slower` }
  }
  return { stage: 'warmup', status: 'passed', ms, message: `${done} run(s) at batch size(s) ${o.batchSizes.join(', ')}` }
}
