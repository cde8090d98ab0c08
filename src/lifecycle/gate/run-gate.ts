import {
  readModelFile,
  VersionReadError,
  type VersionBytes,
} from '../../repository/read-version.js'
import { displayPath } from '../../repository/repository-file.js'
import { ModelLoadError, ModelSession } from '../../runtime/session.js'
import type { Signature } from '../../runtime/signature.js'
import { agreementStage, latencyStage } from './comparison-stages.js'
import type { Contract, GateJob, GateReport, ModelFile, StageResult } from './gate-types.js'
import { signatureChanges } from './signature-check.js'
import { smokeStage } from './smoke-stage.js'
import { timeServingRun } from './run-profile.js'
import { GateCancelled, skipped, StageFailure, timed, type GateControl } from './stage-results.js'

export { GateCancelled } from './stage-results.js'

const NO_CONTROL: GateControl = { cancelled: () => false }

/**
 * Runs the gate's stages up to agreement on a fresh session of the candidate (the warm-up stage
 * runs later, on the session that will serve). Runs in the gate process, or in-process for
 * `modelgate validate`. Never throws for a bad model: that is a failed stage.
 */
export async function runGate(
  job: GateJob,
  control: GateControl = NO_CONTROL,
): Promise<GateReport> {
  const started = performance.now()
  const stages: StageResult[] = []
  const warnings: string[] = []
  let candidate: ModelSession | undefined
  let reference: ModelSession | undefined
  let runMs: number | undefined
  const finish = (passed: boolean, unverified = false): GateReport => ({
    passed,
    unverified,
    stages,
    warnings,
    signature: candidate?.signature,
    ms: performance.now() - started,
    ...(runMs !== undefined && { runMs }),
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
        details: {
          inputs: s.inputs.length,
          outputs: s.outputs.length,
          omittedOutputs: s.omittedOutputs,
        },
        message: s.omittedOutputs.length
          ? `non-tensor outputs left out: ${s.omittedOutputs.map((o) => o.name).join(', ')}`
          : undefined,
      }
    })
    stages.push(load)
    if (load.status === 'failed' || !candidate) return finish(false)
    const signature = candidate.signature
    check()

    if (job.force) {
      for (const stage of ['signature', 'smoke', 'latency', 'agreement'] as const)
        stages.push(skipped(stage, 'forced', 'forced promotion: not checked'))
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

    const needsReference =
      job.reference !== undefined &&
      (job.latency?.maxRatio !== undefined || job.agreement !== undefined)
    if (needsReference) {
      try {
        reference = await openModel(job.reference!, job.root, gateSessionOptions(job))
      } catch (e) {
        warnings.push(
          `the active version (${job.reference!.version}) could not be loaded for comparison: ${(e as Error).message}`,
        )
      }
    }

    control.onStage?.('latency')
    stages.push(await latencyStage(job, candidate, reference, smoke.feeds, control))
    if (stages.at(-1)!.status === 'failed') return finish(false)
    check()

    control.onStage?.('agreement')
    stages.push(await agreementStage(job, candidate, reference, smoke.feeds))
    if (stages.at(-1)!.status === 'failed') return finish(false)

    runMs = await timeServingRun(candidate, job.profileBatchSize ?? 1)
    return finish(true, unverified)
  } finally {
    await candidate?.release()
    await reference?.release()
  }
}

/**
 * The model's session options, without spinning threads whatever model.json says: the gate times
 * the candidate and the active version in turn, and a spinning pool of one would slow the other.
 */
function gateSessionOptions(job: GateJob): GateJob['sessionOptions'] {
  return { ...job.sessionOptions, spinning: false }
}

/** Reads a model file (inside the models directory, with the expected bytes) and creates a session. */
async function openModel(
  model: ModelFile,
  root: string | undefined,
  options: GateJob['sessionOptions'],
): Promise<ModelSession> {
  let read: VersionBytes
  try {
    read = await readModelFile(root, model.file)
  } catch (e) {
    if (e instanceof VersionReadError) throw new StageFailure(e.reason, e.message)
    throw e
  }
  if (read.sha256 !== model.sha256) {
    // Not a verdict on the model: the file changed after the server read it, and is read again.
    throw new StageFailure(
      'file_changed',
      `${displayPath(root, model.file)} has sha256 ${read.sha256}, expected ${model.sha256}: it changed after it was read`,
    )
  }
  try {
    return await ModelSession.create(read.bytes, options)
  } catch (e) {
    if (e instanceof ModelLoadError) throw new StageFailure(e.reason, e.message)
    throw e
  }
}

function signatureStage(job: GateJob, signature: Signature): StageResult {
  if (job.skipSignature)
    return skipped('signature', 'rollback', 'a rollback restores a version that served before')
  const contract: Contract | undefined = job.contract
  if (!contract)
    return skipped(
      'signature',
      'no_contract',
      'nothing to compare with (no active version, no signature in model.json)',
    )
  const t = performance.now()
  const changes = signatureChanges(contract, signature)
  const ms = performance.now() - t
  if (changes.length === 0)
    return {
      stage: 'signature',
      status: 'passed',
      ms,
      message: `compatible with the ${contract.source} signature`,
    }
  const message = `signature differs from the ${contract.source === 'active' ? 'active version' : 'model.json'}: ${changes.join('; ')}`
  if (job.allowSignatureChange)
    return {
      stage: 'signature',
      status: 'passed',
      ms,
      message: `${message} (allowed by allowSignatureChange)`,
      details: { changes },
    }
  return {
    stage: 'signature',
    status: 'failed',
    ms,
    reason: 'signature_changed',
    message,
    details: { changes },
  }
}
