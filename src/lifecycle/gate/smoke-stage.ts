import { decodeFeeds, type Feeds, type Fetches } from '../../runtime/feeds.js'
import type { ModelSession } from '../../runtime/session.js'
import { syntheticFeeds } from '../../runtime/synthetic-feeds.js'
import { oversizedSyntheticInput } from '../../runtime/synthetic-input.js'
import type { GateJob, StageResult } from './gate-types.js'
import type { RejectionReason } from './rejection-reasons.js'
import { checkExpect, checkFinite, checkRange, tallyLabels } from './smoke-checks.js'
import { fmt, GateCancelled, type GateControl } from './stage-results.js'

export interface SmokeOutcome {
  readonly result: StageResult
  readonly unverified: boolean
  /** The inputs the smoke stage ran, reused by the latency and agreement stages. */
  readonly feeds: readonly Feeds[]
}

/** Runs every smoke case (model-level and version-level); the best-effort check without any. */
export async function smokeStage(
  job: GateJob,
  session: ModelSession,
  control: GateControl,
  warnings: string[],
): Promise<SmokeOutcome> {
  const t = performance.now()
  const signature = session.signature
  const outputs = signature.outputs.map((o) => o.name)
  const { cases, minAccuracy } = job.smoke
  const fail = (reason: RejectionReason, message: string, details?: unknown): SmokeOutcome => ({
    result: {
      stage: 'smoke',
      status: 'failed',
      ms: performance.now() - t,
      reason,
      message,
      ...(details !== undefined && { details }),
    },
    unverified: false,
    feeds: [],
  })

  if (cases.length === 0) {
    if (job.requireSmoke)
      return fail('smoke_required', 'no smoke cases (smoke.json), and requireSmoke is set')
    // Best effort: one synthesized input. Non-finite outputs reject; a runtime error does not, since
    // zeros with dims of 1 may simply be outside what the model accepts. An input too large to
    // build is not tried: no request of that size could reach the model either.
    const tooLarge = oversizedSyntheticInput(signature, 1)
    if (tooLarge) return fail('input_too_large', `no smoke cases, and ${tooLarge}`)
    const feeds = syntheticFeeds(signature)
    let fetched: Fetches
    try {
      fetched = await session.run(feeds, outputs)
    } catch (e) {
      const warning = `no smoke cases; the synthesized input (zeros, dynamic dims = 1) failed to run: ${(e as Error).message}`
      warnings.push(warning)
      // Nothing was verified: the stage says skipped, never passed.
      return {
        result: {
          stage: 'smoke',
          status: 'skipped',
          ms: performance.now() - t,
          reason: 'synthesized_input_failed',
          message: warning,
        },
        unverified: true,
        feeds: [],
      }
    }
    const nonFinite = checkFinite(fetched)
    if (nonFinite)
      return fail(
        nonFinite.reason,
        `no smoke cases; on the synthesized input (zeros, dynamic dims = 1) ${nonFinite.message}`,
      )
    const message =
      'no smoke cases: promoted as unverified after one synthesized input (zeros, dynamic dims = 1) gave finite outputs'
    warnings.push(message)
    return {
      result: {
        stage: 'smoke',
        status: 'passed',
        ms: performance.now() - t,
        reason: 'unverified',
        message,
      },
      unverified: true,
      feeds: [feeds],
    }
  }

  const results: { name: string; passed: boolean; ms: number; message?: string }[] = []
  const feedsRun: Feeds[] = []
  let failure: { reason: RejectionReason; message: string } | undefined
  let correct = 0
  let total = 0
  const mismatches: string[] = []
  for (const c of cases) {
    if (control.cancelled()) throw new GateCancelled('superseded by a newer candidate')
    let feeds: Feeds
    try {
      feeds = decodeFeeds(c.inputs, signature)
    } catch (e) {
      const message = `case '${c.name}' (${c.origin}): its inputs do not fit the model: ${(e as Error).message}`
      results.push({ name: c.name, passed: false, ms: 0, message })
      failure ??= { reason: 'smoke_case_invalid', message }
      continue
    }
    const r = performance.now()
    let fetched: Fetches
    try {
      fetched = await session.run(feeds, outputs)
    } catch (e) {
      const message = `case '${c.name}' (${c.origin}): the model failed to run: ${(e as Error).message}`
      results.push({ name: c.name, passed: false, ms: performance.now() - r, message })
      failure ??= { reason: 'smoke_run_failed', message }
      continue
    }
    const ms = performance.now() - r
    feedsRun.push(feeds)
    const problem =
      (c.finite ? checkFinite(fetched) : undefined) ??
      checkExpect(c, signature, fetched) ??
      checkRange(c, fetched)
    let labelProblem: string | undefined
    if (!problem && c.label) {
      const tally = tallyLabels(c, fetched)
      if ('reason' in tally) {
        results.push({ name: c.name, passed: false, ms, message: tally.message })
        failure ??= {
          reason: tally.reason,
          message: `case '${c.name}' (${c.origin}): ${tally.message}`,
        }
        continue
      }
      correct += tally.correct
      total += tally.total
      mismatches.push(...tally.mismatches)
      if (tally.mismatches.length) labelProblem = tally.mismatches.join('; ')
    }
    if (problem) {
      results.push({ name: c.name, passed: false, ms, message: problem.message })
      failure ??= {
        reason: problem.reason,
        message: `case '${c.name}' (${c.origin}): ${problem.message}`,
      }
    } else {
      results.push({
        name: c.name,
        passed: true,
        ms,
        ...(labelProblem && { message: labelProblem }),
      })
    }
  }
  const accuracy = total > 0 ? correct / total : undefined
  const details = {
    cases: results,
    ...(accuracy !== undefined && { accuracy, minAccuracy, labels: total }),
  }
  if (failure) return fail(failure.reason, failure.message, details)
  if (accuracy !== undefined && accuracy < minAccuracy) {
    return fail(
      'below_min_accuracy',
      `label accuracy ${fmt(accuracy)} (${correct}/${total}) is below minAccuracy ${minAccuracy}: ${mismatches.slice(0, 5).join('; ')}`,
      details,
    )
  }
  const message = `${cases.length} case(s) passed${accuracy !== undefined ? `, label accuracy ${fmt(accuracy)} (${correct}/${total})` : ''}`
  return {
    result: { stage: 'smoke', status: 'passed', ms: performance.now() - t, message, details },
    unverified: false,
    feeds: feedsRun,
  }
}
