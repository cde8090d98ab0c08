import type { StageResult } from './gate-types.js'
import type { RejectionReason } from './rejection-reasons.js'

/** What every gate stage shares: cancellation, failures with a reason code, timing. */

/** Thrown to stop a gate whose candidate was superseded; the caller records it, not a verdict. */
export class GateCancelled extends Error {}

export interface GateControl {
  readonly cancelled: () => boolean
  /** Reports the stage about to run, so a timeout can say where it stopped. */
  readonly onStage?: (stage: StageResult['stage']) => void
}

/** A stage failure with a stable reason code. */
export class StageFailure extends Error {
  constructor(
    readonly reason: RejectionReason,
    message: string,
    readonly details?: unknown,
  ) {
    super(message)
  }
}

export async function timed(
  stage: StageResult['stage'],
  body: () => Promise<{ details?: unknown; message?: string | undefined } | undefined>,
): Promise<StageResult> {
  const t = performance.now()
  try {
    const out = (await body()) ?? {}
    return {
      stage,
      status: 'passed',
      ms: performance.now() - t,
      ...(out.message && { message: out.message }),
      ...(out.details !== undefined && { details: out.details }),
    }
  } catch (e) {
    if (!(e instanceof StageFailure)) throw e
    return {
      stage,
      status: 'failed',
      ms: performance.now() - t,
      reason: e.reason,
      message: e.message,
      ...(e.details !== undefined && { details: e.details }),
    }
  }
}

export function skipped(stage: StageResult['stage'], reason: string, message: string): StageResult {
  return { stage, status: 'skipped', ms: 0, reason, message }
}

/** Durations as answers and history show them: milliseconds to the microsecond, not 27.616951999999998. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000
}

/** Stage results with their durations rounded, and those of their smoke cases. */
export function roundStages(stages: readonly StageResult[]): StageResult[] {
  return stages.map((s) => {
    const cases = (s.details as { cases?: { ms?: number }[] } | undefined)?.cases
    const details = cases
      ? {
          ...(s.details as object),
          cases: cases.map((c) => (c.ms === undefined ? c : { ...c, ms: roundMs(c.ms) })),
        }
      : s.details
    return { ...s, ms: roundMs(s.ms), ...(details !== undefined && { details }) } as StageResult
  })
}

export function fmt(n: number): string {
  return n.toPrecision(3)
}
