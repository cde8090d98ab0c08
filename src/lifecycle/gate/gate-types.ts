import type { ModelConfig } from '../../repository/model-config.js'
import type { SmokeSet } from '../../repository/smoke-file.js'
import type { SessionOptions } from '../../runtime/session.js'
import type { Signature, TensorSpec } from '../../runtime/signature.js'
import type { RejectionReason } from './rejection-reasons.js'

/** The gate's stages, in the order they run; each records its status, time and reason. */
export const GATE_STAGES = ['load', 'signature', 'smoke', 'latency', 'agreement', 'warmup'] as const
export type GateStage = (typeof GATE_STAGES)[number]

interface StageOutcome {
  readonly stage: GateStage
  readonly ms: number
  readonly message?: string
  readonly details?: unknown
}

export type StageResult =
  /** `reason` says why a stage was skipped, or qualifies a pass (`unverified`, `warmup_failed`). */
  | (StageOutcome & { readonly status: 'passed' | 'skipped'; readonly reason?: string })
  /** A stable, documented rejection reason (`signature_changed`, `below_min_accuracy`, ...). */
  | (StageOutcome & { readonly status: 'failed'; readonly reason: RejectionReason })

export interface GateReport {
  readonly passed: boolean
  /** Promoted without smoke cases: only a synthesized input was run. */
  readonly unverified: boolean
  readonly stages: readonly StageResult[]
  readonly warnings: readonly string[]
  /** The candidate's signature, when it loaded. */
  readonly signature: Signature | undefined
  readonly ms: number
  /**
   * Median time of one run of a synthesized input at the largest batch serving may run (warm
   * session, gate process): what `execution.mode: auto` decides on. Undefined when not measured.
   */
  readonly runMs?: number | undefined
}

/** A tensor as a contract states it; `shape` undefined: not constrained (names and types only). */
export interface ContractTensor extends Omit<TensorSpec, 'shape'> {
  readonly shape: TensorSpec['shape'] | undefined
}

/** The contract a candidate is held to: the active version's signature or model.json's. */
export interface Contract {
  readonly source: 'active' | 'model.json'
  readonly inputs: readonly ContractTensor[]
  readonly outputs: readonly ContractTensor[]
}

export interface ModelFile {
  readonly file: string
  /** The bytes the server read hash to this; others fail the load stage with `file_changed`. */
  readonly sha256: string
}

/** Everything one gate run needs; plain data, so it crosses to the gate process as is. */
export interface GateJob {
  readonly model: string
  readonly version: number
  readonly candidate: ModelFile
  /** The models directory (real path): the candidate must resolve inside it. */
  readonly root: string | undefined
  readonly sessionOptions: SessionOptions
  readonly smoke: SmokeSet
  readonly requireSmoke: boolean
  readonly contract: Contract | undefined
  readonly allowSignatureChange: boolean
  readonly latency: ModelConfig['latency']
  readonly agreement: ModelConfig['agreement']
  /** The active version, for `latency.maxRatio` and `agreement`. */
  readonly reference: (ModelFile & { readonly version: number }) | undefined
  /** An explicit `force`: only `load` runs (a session must still be created); the rest is skipped. */
  readonly force?: boolean
  /** Skip the signature stage: a rollback restores a version that served before. */
  readonly skipSignature?: boolean
  /** The largest batch serving may run: the gate times one run at that size (GateReport.runMs). */
  readonly profileBatchSize?: number
}
