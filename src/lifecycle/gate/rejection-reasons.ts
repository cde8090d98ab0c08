import { FILE_REFUSALS } from '../../repository/repository-file.js'

/**
 * Every `reason` a version can be rejected with (GET /models/{name}, its history, the log): stable
 * API like the error codes, each documented in the README's list (a test checks). A failed stage
 * must carry one of these (the type says so), so a new reason starts here.
 */
export const REJECTION_REASONS = [
  // Reading the version's files, before any gate.
  ...FILE_REFUSALS,
  'checksum_mismatch',
  // load
  'invalid_model',
  'unsupported_model',
  'file_changed',
  // signature
  'signature_changed',
  // smoke
  'smoke_required',
  'input_too_large',
  'smoke_case_invalid',
  'smoke_run_failed',
  'expect_mismatch',
  'below_min_accuracy',
  'non_finite_output',
  'out_of_range',
  // latency, agreement
  'too_slow',
  'agreement_invalid',
  'disagreement',
  // any stage
  'timeout',
  'runtime_crash',
  'gate_error',
] as const

export type RejectionReason = (typeof REJECTION_REASONS)[number]
