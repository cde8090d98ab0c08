import type { Feeds } from '../../runtime/feeds.js'
import type { ModelSession } from '../../runtime/session.js'
import type { GateJob, StageResult } from './gate-types.js'
import { predictedLabels, sameTensor } from './smoke-checks.js'
import { fmt, GateCancelled, skipped, type GateControl } from './stage-results.js'

/** The stages that compare the candidate with the active version: latency and agreement. */

const LATENCY_MIN_RUNS = 30
const LATENCY_MAX_RUNS = 120
const LATENCY_BUDGET_MS = 2000
const LATENCY_BLOCK = 5

export async function latencyStage(
  job: GateJob,
  candidate: ModelSession,
  reference: ModelSession | undefined,
  feeds: readonly Feeds[],
  control: GateControl,
): Promise<StageResult> {
  const { maxMs, maxRatio } = job.latency ?? {}
  if (maxMs === undefined && maxRatio === undefined)
    return skipped('latency', 'not_configured', 'no latency budget in model.json')
  if (feeds.length === 0)
    return skipped('latency', 'no_inputs', 'no smoke input ran, so there is nothing to time')
  const t = performance.now()
  // Candidate and reference alternate on the same inputs, so both see the same machine load.
  const cand: number[] = []
  const ref: number[] = []
  const compare = maxRatio !== undefined && reference !== undefined
  // Untimed first runs: a session's first run allocates, and the reference has not run yet.
  for (const f of feeds) {
    await timeRun(candidate, f)
    if (compare) await timeRun(reference, f)
  }
  // Then blocks of runs in turn, so both see the same machine load without each run paying for
  // the other session's last one. At least a few runs of every input; then until 30 runs or the
  // time budget, at most 120.
  const deadline = performance.now() + LATENCY_BUDGET_MS
  const minimum = Math.max(feeds.length, 5)
  for (let i = 0; cand.length < LATENCY_MAX_RUNS; i += LATENCY_BLOCK) {
    if (
      cand.length >= minimum &&
      (cand.length >= LATENCY_MIN_RUNS || performance.now() >= deadline)
    )
      break
    if (control.cancelled()) throw new GateCancelled('superseded by a newer candidate')
    for (let j = i; j < i + LATENCY_BLOCK; j++)
      cand.push(await timeRun(candidate, feeds[j % feeds.length]!))
    if (compare)
      for (let j = i; j < i + LATENCY_BLOCK; j++)
        ref.push(await timeRun(reference, feeds[j % feeds.length]!))
  }
  const p95 = percentile(cand, 95)
  const details: Record<string, number> = { p95Ms: p95, runs: cand.length }
  const problems: string[] = []
  if (maxMs !== undefined && p95 > maxMs)
    problems.push(`p95 ${fmt(p95)} ms is over latency.maxMs ${maxMs}`)
  let note = ''
  if (maxRatio !== undefined) {
    if (compare) {
      const refP95 = percentile(ref, 95)
      details.activeP95Ms = refP95
      details.ratio = p95 / refP95
      if (p95 > maxRatio * refP95)
        problems.push(
          `p95 ${fmt(p95)} ms is over ${maxRatio} × the active version's ${fmt(refP95)} ms`,
        )
    } else {
      note = ' (no active version to compare with: latency.maxRatio not checked)'
    }
  }
  const ms = performance.now() - t
  if (problems.length)
    return {
      stage: 'latency',
      status: 'failed',
      ms,
      reason: 'too_slow',
      message: problems.join('; '),
      details,
    }
  return {
    stage: 'latency',
    status: 'passed',
    ms,
    message: `p95 ${fmt(p95)} ms over ${cand.length} runs${note}`,
    details,
  }
}

export async function agreementStage(
  job: GateJob,
  candidate: ModelSession,
  reference: ModelSession | undefined,
  feeds: readonly Feeds[],
): Promise<StageResult> {
  const agreement = job.agreement
  if (!agreement) return skipped('agreement', 'not_configured', 'no agreement rule in model.json')
  if (!reference)
    return skipped('agreement', 'no_active_version', 'no active version to compare with')
  if (feeds.length === 0) return skipped('agreement', 'no_inputs', 'no smoke input ran')
  const t = performance.now()
  const tol = { atol: agreement.tolerance?.atol ?? 1e-5, rtol: agreement.tolerance?.rtol ?? 1e-3 }
  const shared = candidate.signature.outputs
    .map((o) => o.name)
    .filter((n) => reference.signature.outputs.some((r) => r.name === n))
  const names = agreement.output ? [agreement.output] : shared
  if (names.length === 0 || (agreement.output && !shared.includes(agreement.output))) {
    return {
      stage: 'agreement',
      status: 'failed',
      ms: performance.now() - t,
      reason: 'agreement_invalid',
      message: `no shared output to compare (${agreement.output ?? 'none shared'})`,
    }
  }
  let agree = 0
  for (const f of feeds) {
    const [a, b] = [await candidate.run(f, names), await reference.run(f, names)]
    const same = agreement.output
      ? JSON.stringify(predictedLabels(a[agreement.output]!)) ===
        JSON.stringify(predictedLabels(b[agreement.output]!))
      : names.every((n) => sameTensor(a[n]!, b[n]!, tol))
    if (same) agree++
  }
  const fraction = agree / feeds.length
  const details = { agree, inputs: feeds.length, fraction, min: agreement.min }
  const message = `${agree}/${feeds.length} inputs agree with the active version (${fmt(fraction)}; min ${agreement.min})`
  const ms = performance.now() - t
  if (fraction < agreement.min)
    return { stage: 'agreement', status: 'failed', ms, reason: 'disagreement', message, details }
  return { stage: 'agreement', status: 'passed', ms, message, details }
}

async function timeRun(session: ModelSession, feeds: Feeds): Promise<number> {
  const t = performance.now()
  await session.run(
    feeds,
    session.signature.outputs.map((o) => o.name),
  )
  return performance.now() - t
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return (
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ??
    NaN
  )
}
