import type { Engine } from './engine.js'
import type { Feeds } from './feeds.js'
import { syntheticFeeds } from './synthetic-feeds.js'
import { oversizedSyntheticInput } from './synthetic-input.js'

/** How a session is warmed: `runs` runs at each batch size, smoke inputs for a model that refuses zeros. */
export interface WarmUpPlan {
  readonly runs: number
  readonly batchSizes: readonly number[]
  readonly fallbackFeeds: readonly Feeds[]
}

/** What warming did: the rounds of runs that succeeded, and the first thing that failed. */
export interface WarmUpOutcome {
  readonly done: number
  readonly ms: number
  readonly problem: string | undefined
}

/**
 * `runs` runs at each batch size on the session (a version in workers runs as many at once as it
 * has workers, one per idle worker), so the first real request does not pay for onnxruntime's
 * first-run allocations. Each run yields to the event loop: requests on the active version keep
 * flowing while a candidate warms up. A model that refuses the synthetic input is warmed with its
 * smoke inputs instead.
 */
export async function warmUpRuns(session: Engine, o: WarmUpPlan): Promise<WarmUpOutcome> {
  const t = performance.now()
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
        await Promise.all(
          Array.from({ length: session.concurrency }, () =>
            session.run(feeds(), outputs, { handOver }),
          ),
        )
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
  return { done, ms: performance.now() - t, problem }
}
