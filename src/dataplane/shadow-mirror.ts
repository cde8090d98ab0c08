import type { Tensor } from 'onnxruntime-node'
import { isFloat, predictedLabels, sameTensor, valuesOf } from '../lifecycle/gate/smoke-checks.js'
import type { Rollout, RolloutSettings } from '../lifecycle/versions/version-state.js'
import type { Logger } from '../log.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import type { Feeds, Fetches } from '../runtime/feeds.js'
import type { RequestTap, TapFollowUp, TapRequest } from './request-taps.js'

/**
 * Mirrored copies running at once per model. A copy that would start beyond this (or too soon,
 * below) is dropped and counted, never queued: the shadow takes what the machine can spare from
 * the live traffic, and a slow candidate cannot pile up work behind the active version.
 */
const MAX_IN_FLIGHT = 1

/**
 * The most of the time mirrored runs may take. A model that runs on the event loop blocks every
 * request while it runs (onnxruntime-node's run is synchronous there), and one in workers takes a
 * core: after a copy that ran d ms, the next may start only 9 d ms later. A quick model is mirrored
 * at nearly every request; a slow one at a rate that costs the active path at most about a tenth.
 */
const MAX_SHADOW_SHARE = 0.1

type ShadowSettings = Extract<RolloutSettings, { mode: 'shadow' }>

/**
 * A shadow rollout's data-plane half: after the active version has answered a request, a copy of it
 * runs on the candidate (on the next turn of the event loop, so the client's answer goes out first)
 * and the two answers are compared into the rollout's tally. The candidate's answer reaches no one.
 */
export class ShadowMirror implements RequestTap {
  readonly #logger: Logger
  readonly #metrics: ServerMetrics
  /** Each rollout's labelled counters, looked up once instead of hashing labels per copy. */
  readonly #counters = new WeakMap<Rollout, Record<ShadowResult, { inc(): void }>>()
  /** When each rollout's next copy may start (performance.now() ms): the share above. */
  readonly #restUntil = new WeakMap<Rollout, number>()

  constructor(logger: Logger, metrics: ServerMetrics) {
    this.#logger = logger
    this.#metrics = metrics
  }

  observe(request: TapRequest, _feeds: Feeds): TapFollowUp | undefined {
    const { model, version, routed } = request
    const r = model.rollout
    if (!routed || r?.settings.mode !== 'shadow' || version !== model.active) return undefined
    const settings = r.settings
    if (settings.fraction < 1 && Math.random() >= settings.fraction) return undefined
    if (r.shadow.inFlight >= MAX_IN_FLIGHT || this.#resting(r)) {
      this.#dropped(r)
      return undefined
    }
    return {
      keepFeeds: true,
      after: (_id, fetched, feeds) => {
        // Requests that ran together may all have passed the check above: the bound holds here.
        if (r.shadow.inFlight >= MAX_IN_FLIGHT || this.#resting(r) || r.candidate.retired) {
          this.#dropped(r)
          return
        }
        r.shadow.inFlight++
        setImmediate(() => void this.#mirror(r, settings, feeds, fetched))
      },
    }
  }

  #resting(r: Rollout): boolean {
    return performance.now() < (this.#restUntil.get(r) ?? 0)
  }

  #dropped(r: Rollout): void {
    r.shadow.dropped++
    this.#count(r).dropped.inc()
  }

  #count(r: Rollout): Record<ShadowResult, { inc(): void }> {
    let c = this.#counters.get(r)
    if (!c) {
      const labels = { model: r.candidate.model, version: String(r.version) }
      const m = this.#metrics.shadowRequests
      c = {
        agreed: m.labels({ ...labels, result: 'agreed' }),
        disagreed: m.labels({ ...labels, result: 'disagreed' }),
        failed: m.labels({ ...labels, result: 'failed' }),
        dropped: m.labels({ ...labels, result: 'dropped' }),
      }
      this.#counters.set(r, c)
    }
    return c
  }

  async #mirror(
    r: Rollout,
    settings: ShadowSettings,
    feeds: Feeds,
    answered: Fetches,
  ): Promise<void> {
    const tally = r.shadow
    try {
      if (r.candidate.retired) return // the rollout ended meanwhile: this copy counts for nothing
      const outputs = Object.keys(answered).filter((n) => r.candidate.outputNames.includes(n))
      const lease = r.candidate.lease()
      let mirrored: Fetches
      const started = performance.now()
      try {
        mirrored = await lease.version.run(feeds, outputs, { handOver: true })
      } catch (e) {
        tally.compared++
        tally.failed++
        this.#count(r).failed.inc()
        this.#logger.debug('shadow_run_failed', {
          model: r.candidate.model,
          version: r.version,
          error: e,
        })
        return
      } finally {
        lease.release()
        const ended = performance.now()
        this.#restUntil.set(r, ended + (ended - started) * (1 / MAX_SHADOW_SHARE - 1))
      }
      const c = compareAnswers(answered, mirrored, outputs, settings.agreement)
      tally.compared++
      if (c.agreed) tally.agreed++
      this.#count(r)[c.agreed ? 'agreed' : 'disagreed'].inc()
      if (c.meanAbsDiff !== null) {
        tally.absDiffSum += c.meanAbsDiff
        tally.absDiffCount++
      }
    } finally {
      tally.inFlight--
    }
  }
}

type ShadowResult = 'agreed' | 'disagreed' | 'failed' | 'dropped'

/**
 * Whether two answers to one request agree: on `agreement.output`'s predicted label (every row the
 * same), or on every shared output within the tolerance; and the mean absolute difference of their
 * floating-point outputs (null when none is).
 */
export function compareAnswers(
  a: Fetches,
  b: Fetches,
  outputs: readonly string[],
  agreement: ShadowSettings['agreement'],
): { agreed: boolean; meanAbsDiff: number | null } {
  const shared = outputs.filter((n) => a[n] && b[n])
  let agreed: boolean
  if (agreement.output !== undefined) {
    const x = a[agreement.output]
    const y = b[agreement.output]
    agreed = x !== undefined && y !== undefined && sameLabels(x, y)
  } else {
    agreed = shared.length > 0 && shared.every((n) => sameTensor(a[n]!, b[n]!, agreement.tolerance))
  }
  let sum = 0
  let count = 0
  for (const n of shared) {
    const x = a[n]!
    const y = b[n]!
    // Differences of continuous values only: a class id's difference means nothing.
    if (!isFloat(x.type) || x.type !== y.type) continue
    const xs = valuesOf(x)
    const ys = valuesOf(y)
    if (xs.length !== ys.length) continue
    for (let i = 0; i < xs.length; i++) sum += Math.abs(Number(xs[i]) - Number(ys[i]))
    count += xs.length
  }
  return { agreed, meanAbsDiff: count === 0 ? null : sum / count }
}

function sameLabels(x: Tensor, y: Tensor): boolean {
  const p = predictedLabels(x)
  const q = predictedLabels(y)
  return p.length === q.length && p.every((v, i) => v === q[i])
}
