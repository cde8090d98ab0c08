import type { Tensor } from 'onnxruntime-node'
import { readFile, realpath } from 'node:fs/promises'
import { isInside } from '../../repository/layout.js'
import { sha256Hex } from '../../repository/read-version.js'
import { ModelLoadError, ModelSession, type Feeds, type Fetches } from '../../runtime/session.js'
import type { Signature } from '../../runtime/signature.js'
import { syntheticFeeds } from '../../runtime/synthetic-feeds.js'
import { decodeFeeds } from '../../dataplane/feeds.js'
import type { Contract, GateJob, GateReport, ModelFile, StageResult } from './gate-types.js'
import { signatureChanges } from './signature-check.js'
import { checkExpect, checkFinite, checkRange, isFloat, predictedLabels, tallyLabels, valuesOf, withinTolerance } from './smoke-checks.js'

/** Thrown to stop a gate whose candidate was superseded; the caller records it, not a verdict. */
export class GateCancelled extends Error {}

export interface GateControl {
  readonly cancelled: () => boolean
  /** Reports the stage about to run, so a timeout can say where it stopped. */
  readonly onStage?: (stage: StageResult['stage']) => void
}

const NO_CONTROL: GateControl = { cancelled: () => false }
const LATENCY_MIN_RUNS = 30
const LATENCY_MAX_RUNS = 120
const LATENCY_BUDGET_MS = 2000
const LATENCY_BLOCK = 5

/**
 * Runs the gate's stages up to agreement on a fresh session of the candidate (the warm-up stage
 * runs later, on the session that will serve). Runs in the gate process, or in-process for
 * `modelgate validate`. Never throws for a bad model: that is a failed stage.
 */
export async function runGate(job: GateJob, control: GateControl = NO_CONTROL): Promise<GateReport> {
  const started = performance.now()
  const stages: StageResult[] = []
  const warnings: string[] = []
  let candidate: ModelSession | undefined
  let reference: ModelSession | undefined
  const finish = (passed: boolean, unverified = false): GateReport => ({
    passed,
    unverified,
    stages,
    warnings,
    signature: candidate?.signature,
    ms: performance.now() - started,
  })
  const check = () => {
    if (control.cancelled()) throw new GateCancelled('superseded by a newer candidate')
  }
  try {
    control.onStage?.('load')
    const load = await timed('load', async () => {
      candidate = await openModel(job.candidate, job.root, gateSessionOptions(job))
      const s = candidate.signature
      return {
        details: { inputs: s.inputs.length, outputs: s.outputs.length, omittedOutputs: s.omittedOutputs },
        message: s.omittedOutputs.length ? `non-tensor outputs left out: ${s.omittedOutputs.map((o) => o.name).join(', ')}` : undefined,
      }
    })
    stages.push(load)
    if (load.status === 'failed' || !candidate) return finish(false)
    const signature = candidate.signature
    check()

    if (job.force) {
      for (const stage of ['signature', 'smoke', 'latency', 'agreement'] as const) stages.push(skipped(stage, 'forced', 'forced promotion: not checked'))
      return finish(true, true)
    }

    control.onStage?.('signature')
    stages.push(signatureStage(job, signature))
    if (stages.at(-1)!.status === 'failed') return finish(false)
    check()

    control.onStage?.('smoke')
    const smoke = await smokeStage(job, candidate, control, warnings)
    stages.push(smoke.result)
    if (smoke.result.status === 'failed') return finish(false)
    const unverified = smoke.unverified
    check()

    const needsReference = job.reference !== undefined && (job.latency?.maxRatio !== undefined || job.agreement !== undefined)
    if (needsReference) {
      try {
        reference = await openModel(job.reference!, job.root, gateSessionOptions(job))
      } catch (e) {
        warnings.push(`the active version (${job.reference!.version}) could not be loaded for comparison: ${(e as Error).message}`)
      }
    }

    control.onStage?.('latency')
    stages.push(await latencyStage(job, candidate, reference, smoke.feeds, control))
    if (stages.at(-1)!.status === 'failed') return finish(false)
    check()

    control.onStage?.('agreement')
    stages.push(await agreementStage(job, candidate, reference, smoke.feeds))
    if (stages.at(-1)!.status === 'failed') return finish(false)

    return finish(true, unverified)
  } finally {
    await candidate?.release()
    await reference?.release()
  }
}

/**
 * The model's session options, without spinning threads: the gate times the candidate and the
 * active version in turn, and a spinning pool of one would slow the other.
 */
function gateSessionOptions(job: GateJob): GateJob['sessionOptions'] {
  return { ...job.sessionOptions, spinning: false }
}

/** Reads a model file (inside the models directory, with the expected bytes) and creates a session. */
export async function openModel(model: ModelFile, root: string | undefined, options: GateJob['sessionOptions']): Promise<ModelSession> {
  const real = await realpath(model.file).catch((e: Error) => {
    throw new StageFailure('unreadable', `cannot read ${model.file}: ${e.message}`)
  })
  if (root !== undefined && !isInside(root, real)) {
    throw new StageFailure('escapes_models_dir', `${model.file} resolves to ${real}, outside the models directory`)
  }
  const bytes = await readFile(real).catch((e: Error) => {
    throw new StageFailure('unreadable', `cannot read ${model.file}: ${e.message}`)
  })
  const sha256 = sha256Hex(bytes)
  if (sha256 !== model.sha256) {
    throw new StageFailure('checksum_mismatch', `${model.file} has sha256 ${sha256}, expected ${model.sha256} (it changed or is incomplete)`)
  }
  try {
    return await ModelSession.create(bytes, options)
  } catch (e) {
    if (e instanceof ModelLoadError) throw new StageFailure(e.reason, e.message)
    throw e
  }
}

/** A stage failure with a stable reason code. */
export class StageFailure extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message)
  }
}

async function timed(
  stage: StageResult['stage'],
  body: () => Promise<{ details?: unknown; message?: string | undefined } | void>,
): Promise<StageResult> {
  const t = performance.now()
  try {
    const out = (await body()) ?? {}
    return { stage, status: 'passed', ms: performance.now() - t, ...(out.message && { message: out.message }), ...(out.details !== undefined && { details: out.details }) }
  } catch (e) {
    if (!(e instanceof StageFailure)) throw e
    return { stage, status: 'failed', ms: performance.now() - t, reason: e.reason, message: e.message, ...(e.details !== undefined && { details: e.details }) }
  }
}

function skipped(stage: StageResult['stage'], reason: string, message: string): StageResult {
  return { stage, status: 'skipped', ms: 0, reason, message }
}

function signatureStage(job: GateJob, signature: Signature): StageResult {
  if (job.skipSignature) return skipped('signature', 'rollback', 'a rollback restores a version that served before')
  const contract: Contract | undefined = job.contract
  if (!contract) return skipped('signature', 'no_contract', 'nothing to compare with (no active version, no signature in model.json)')
  const t = performance.now()
  const changes = signatureChanges(contract, signature)
  const ms = performance.now() - t
  if (changes.length === 0) return { stage: 'signature', status: 'passed', ms, message: `compatible with the ${contract.source} signature` }
  const message = `signature differs from the ${contract.source === 'active' ? 'active version' : 'model.json'}: ${changes.join('; ')}`
  if (job.allowSignatureChange) return { stage: 'signature', status: 'passed', ms, message: `${message} (allowed by allowSignatureChange)`, details: { changes } }
  return { stage: 'signature', status: 'failed', ms, reason: 'signature_changed', message, details: { changes } }
}

interface SmokeOutcome {
  readonly result: StageResult
  readonly unverified: boolean
  /** The inputs the smoke stage ran, reused by the latency and agreement stages. */
  readonly feeds: readonly Feeds[]
}

async function smokeStage(job: GateJob, session: ModelSession, control: GateControl, warnings: string[]): Promise<SmokeOutcome> {
  const t = performance.now()
  const signature = session.signature
  const outputs = signature.outputs.map((o) => o.name)
  const { cases, minAccuracy } = job.smoke
  const fail = (reason: string, message: string, details?: unknown): SmokeOutcome => ({
    result: { stage: 'smoke', status: 'failed', ms: performance.now() - t, reason, message, ...(details !== undefined && { details }) },
    unverified: false,
    feeds: [],
  })

  if (cases.length === 0) {
    if (job.requireSmoke) return fail('smoke_required', 'no smoke cases (smoke.json), and requireSmoke is set')
    // Best effort: one synthesized input. Non-finite outputs reject; a runtime error does not, since
    // zeros with dims of 1 may simply be outside what the model accepts.
    const feeds = syntheticFeeds(signature)
    let fetched: Fetches
    try {
      fetched = await session.run(feeds, outputs)
    } catch (e) {
      const warning = `no smoke cases; the synthesized input (zeros, dynamic dims = 1) failed to run: ${(e as Error).message}`
      warnings.push(warning)
      return { result: { stage: 'smoke', status: 'passed', ms: performance.now() - t, reason: 'unverified', message: warning }, unverified: true, feeds: [] }
    }
    const nonFinite = checkFinite(fetched)
    if (nonFinite) return fail(nonFinite.reason, `no smoke cases; on the synthesized input (zeros, dynamic dims = 1) ${nonFinite.message}`)
    const message = 'no smoke cases: promoted as unverified after one synthesized input (zeros, dynamic dims = 1) gave finite outputs'
    warnings.push(message)
    return { result: { stage: 'smoke', status: 'passed', ms: performance.now() - t, reason: 'unverified', message }, unverified: true, feeds: [feeds] }
  }

  const results: { name: string; passed: boolean; ms: number; message?: string }[] = []
  const feedsRun: Feeds[] = []
  let failure: { reason: string; message: string } | undefined
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
    const problem = (c.finite ? checkFinite(fetched) : undefined) ?? checkExpect(c, signature, fetched) ?? checkRange(c, fetched)
    let labelProblem: string | undefined
    if (!problem && c.label) {
      const tally = tallyLabels(c, fetched)
      if ('reason' in tally) {
        results.push({ name: c.name, passed: false, ms, message: tally.message })
        failure ??= { reason: tally.reason, message: `case '${c.name}' (${c.origin}): ${tally.message}` }
        continue
      }
      correct += tally.correct
      total += tally.total
      mismatches.push(...tally.mismatches)
      if (tally.mismatches.length) labelProblem = tally.mismatches.join('; ')
    }
    if (problem) {
      results.push({ name: c.name, passed: false, ms, message: problem.message })
      failure ??= { reason: problem.reason, message: `case '${c.name}' (${c.origin}): ${problem.message}` }
    } else {
      results.push({ name: c.name, passed: true, ms, ...(labelProblem && { message: labelProblem }) })
    }
  }
  const accuracy = total > 0 ? correct / total : undefined
  const details = { cases: results, ...(accuracy !== undefined && { accuracy, minAccuracy, labels: total }) }
  if (failure) return fail(failure.reason, failure.message, details)
  if (accuracy !== undefined && accuracy < minAccuracy) {
    return fail('below_min_accuracy', `label accuracy ${fmt(accuracy)} (${correct}/${total}) is below minAccuracy ${minAccuracy}: ${mismatches.slice(0, 5).join('; ')}`, details)
  }
  const message = `${cases.length} case(s) passed${accuracy !== undefined ? `, label accuracy ${fmt(accuracy)} (${correct}/${total})` : ''}`
  return { result: { stage: 'smoke', status: 'passed', ms: performance.now() - t, message, details }, unverified: false, feeds: feedsRun }
}

async function latencyStage(
  job: GateJob,
  candidate: ModelSession,
  reference: ModelSession | undefined,
  feeds: readonly Feeds[],
  control: GateControl,
): Promise<StageResult> {
  const { maxMs, maxRatio } = job.latency ?? {}
  if (maxMs === undefined && maxRatio === undefined) return skipped('latency', 'not_configured', 'no latency budget in model.json')
  if (feeds.length === 0) return skipped('latency', 'no_inputs', 'no smoke input ran, so there is nothing to time')
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
    if (cand.length >= minimum && (cand.length >= LATENCY_MIN_RUNS || performance.now() >= deadline)) break
    if (control.cancelled()) throw new GateCancelled('superseded by a newer candidate')
    for (let j = i; j < i + LATENCY_BLOCK; j++) cand.push(await timeRun(candidate, feeds[j % feeds.length]!))
    if (compare) for (let j = i; j < i + LATENCY_BLOCK; j++) ref.push(await timeRun(reference, feeds[j % feeds.length]!))
  }
  const p95 = percentile(cand, 95)
  const details: Record<string, number> = { p95Ms: p95, runs: cand.length }
  const problems: string[] = []
  if (maxMs !== undefined && p95 > maxMs) problems.push(`p95 ${fmt(p95)} ms is over latency.maxMs ${maxMs}`)
  let note = ''
  if (maxRatio !== undefined) {
    if (compare) {
      const refP95 = percentile(ref, 95)
      details.activeP95Ms = refP95
      details.ratio = p95 / refP95
      if (p95 > maxRatio * refP95) problems.push(`p95 ${fmt(p95)} ms is over ${maxRatio} × the active version's ${fmt(refP95)} ms`)
    } else {
      note = ' (no active version to compare with: latency.maxRatio not checked)'
    }
  }
  const ms = performance.now() - t
  if (problems.length) return { stage: 'latency', status: 'failed', ms, reason: 'too_slow', message: problems.join('; '), details }
  return { stage: 'latency', status: 'passed', ms, message: `p95 ${fmt(p95)} ms over ${cand.length} runs${note}`, details }
}

async function agreementStage(job: GateJob, candidate: ModelSession, reference: ModelSession | undefined, feeds: readonly Feeds[]): Promise<StageResult> {
  const agreement = job.agreement
  if (!agreement) return skipped('agreement', 'not_configured', 'no agreement rule in model.json')
  if (!reference) return skipped('agreement', 'no_active_version', 'no active version to compare with')
  if (feeds.length === 0) return skipped('agreement', 'no_inputs', 'no smoke input ran')
  const t = performance.now()
  const tol = { atol: agreement.tolerance?.atol ?? 1e-5, rtol: agreement.tolerance?.rtol ?? 1e-3 }
  const shared = candidate.signature.outputs.map((o) => o.name).filter((n) => reference.signature.outputs.some((r) => r.name === n))
  const names = agreement.output ? [agreement.output] : shared
  if (names.length === 0 || (agreement.output && !shared.includes(agreement.output))) {
    return { stage: 'agreement', status: 'failed', ms: performance.now() - t, reason: 'agreement_invalid', message: `no shared output to compare (${agreement.output ?? 'none shared'})` }
  }
  let agree = 0
  for (const f of feeds) {
    const [a, b] = [await candidate.run(f, names), await reference.run(f, names)]
    const same = agreement.output
      ? JSON.stringify(predictedLabels(a[agreement.output]!)) === JSON.stringify(predictedLabels(b[agreement.output]!))
      : names.every((n) => sameTensor(a[n]!, b[n]!, tol))
    if (same) agree++
  }
  const fraction = agree / feeds.length
  const details = { agree, inputs: feeds.length, fraction, min: agreement.min }
  const message = `${agree}/${feeds.length} inputs agree with the active version (${fmt(fraction)}; min ${agreement.min})`
  const ms = performance.now() - t
  if (fraction < agreement.min) return { stage: 'agreement', status: 'failed', ms, reason: 'disagreement', message, details }
  return { stage: 'agreement', status: 'passed', ms, message, details }
}

function sameTensor(a: Tensor, b: Tensor, tol: { atol: number; rtol: number }): boolean {
  if (a.type !== b.type || a.dims.join(',') !== b.dims.join(',')) return false
  const x = valuesOf(a)
  const y = valuesOf(b)
  const float = isFloat(a.type)
  for (let i = 0; i < x.length; i++) {
    if (float ? !withinTolerance(x[i] as number, y[i] as number, tol) : x[i] !== y[i]) return false
  }
  return true
}

async function timeRun(session: ModelSession, feeds: Feeds): Promise<number> {
  const t = performance.now()
  await session.run(feeds, session.signature.outputs.map((o) => o.name))
  return performance.now() - t
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN
}

function fmt(n: number): string {
  return n.toPrecision(3)
}
