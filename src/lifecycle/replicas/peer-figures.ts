import { z } from 'zod'
import type { LiveFigures, PeerSamples, WindowSample } from '../../metrics/live-figures.js'
import { probationSample } from '../promotion/probation-rules.js'
import { canarySamples } from '../promotion/rollout-rules.js'
import type { ModelView } from '../versions/version-state.js'

/**
 * Probations and canary steps are judged by the gatekeeper on every replica's requests and
 * feedback: each replica publishes, in its heartbeat, the raw figures of the versions being judged
 * (`WindowSample`: counts, sums, latencies), and the gatekeeper pools the fresh ones with its own
 * (`pooledSnapshot`: exact, as if one window had seen them all).
 */

const sample = z.object({
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  latencies: z.array(z.number().nonnegative()).max(100_000).readonly(),
  labels: z.number().int().nonnegative(),
  right: z.number().nonnegative(),
  values: z.number().int().nonnegative(),
  absErrorSum: z.number().nonnegative(),
})

const version = z.number().int().positive()
const sha256 = z.string()

const modelFigures = z.object({
  probation: z.object({ version, sha256, sample }).optional(),
  canary: z
    .object({ version, sha256, step: z.number().int(), candidate: sample, active: sample })
    .optional(),
})

const publishedFigures = z.record(z.string(), modelFigures)

/** What a replica publishes: per model, its figures of the version on probation and of the canary step. */
export type PublishedFigures = z.infer<typeof publishedFigures>

/** This replica's figures of every version being judged; undefined when none is. */
export function publishFigures(
  models: Iterable<ModelView>,
  live: LiveFigures,
): PublishedFigures | undefined {
  const out: PublishedFigures = {}
  for (const m of models) {
    const p = m.probation
    const probation = probationSample(m, live)
    const r = m.rollout
    const canary = canarySamples(m, live)
    if (!(p && probation) && !(r && canary)) continue
    out[m.name] = {
      ...(p &&
        probation && {
          probation: { version: p.version, sha256: p.sha256, sample: compact(probation) },
        }),
      ...(r &&
        canary && {
          canary: {
            version: r.version,
            sha256: r.sha256,
            step: r.step,
            candidate: compact(canary.candidate),
            active: compact(canary.active),
          },
        }),
    }
  }
  return Object.keys(out).length > 0 ? out : undefined
}

/** Latencies to the microsecond: a heartbeat's size, not its precision, is what matters. */
function compact(s: WindowSample): WindowSample {
  return { ...s, latencies: s.latencies.map((ms) => Math.round(ms * 1000) / 1000) }
}

/** The other replicas' published figures, as their last fresh heartbeats hold them. */
export class PeerFigures implements PeerSamples {
  #peers: PublishedFigures[] = []

  /** The heartbeats just read: those of other replicas, fresh, with figures that parse. */
  update(
    beats: readonly { id: string; lastSeen: string; figures?: unknown }[],
    o: { self: string; freshMs: number },
  ): void {
    const now = Date.now()
    this.#peers = []
    for (const b of beats) {
      if (b.id === o.self || b.figures === undefined || now - Date.parse(b.lastSeen) > o.freshMs)
        continue
      const parsed = publishedFigures.safeParse(b.figures)
      if (parsed.success) this.#peers.push(parsed.data)
    }
  }

  probation(model: string, version: number, sha256: string): readonly WindowSample[] {
    const out: WindowSample[] = []
    for (const peer of this.#peers) {
      const p = peer[model]?.probation
      if (p && p.version === version && p.sha256 === sha256) out.push(p.sample)
    }
    return out
  }

  canary(model: string, version: number, sha256: string, step: number) {
    const candidate: WindowSample[] = []
    const active: WindowSample[] = []
    for (const peer of this.#peers) {
      const c = peer[model]?.canary
      if (!c || c.version !== version || c.sha256 !== sha256 || c.step !== step) continue
      candidate.push(c.candidate)
      active.push(c.active)
    }
    return { candidate, active }
  }
}
