import { isBatchable } from '../../runtime/batcher.js'
import type { ModelSession } from '../../runtime/session.js'
import { syntheticFeeds } from '../../runtime/synthetic-feeds.js'
import { oversizedSyntheticInput } from '../../runtime/synthetic-input.js'

const TIMED_RUNS = 3

/**
 * How long one run takes at the largest batch serving may run (`maxBatch` rows when the model's
 * leading dims are dynamic, else one request): the median of a few runs of a synthesized input,
 * after one untimed run. Undefined when the model refuses that input.
 */
export async function timeServingRun(
  session: ModelSession,
  maxBatch: number,
): Promise<number | undefined> {
  const batch = isBatchable(session.signature) ? maxBatch : 1
  if (oversizedSyntheticInput(session.signature, batch)) return undefined
  const feeds = syntheticFeeds(session.signature, batch)
  const outputs = session.signature.outputs.map((o) => o.name)
  try {
    await session.run(feeds, outputs)
    const times: number[] = []
    for (let i = 0; i < TIMED_RUNS; i++) {
      const t = performance.now()
      await session.run(feeds, outputs)
      times.push(performance.now() - t)
    }
    return times.sort((a, b) => a - b)[TIMED_RUNS >> 1]
  } catch {
    return undefined
  }
}
