import type { TypedTensorJson } from '../runtime/tensor-encode.js'

/**
 * Where `smoke record` gets today's outputs: a running server (smoke-server-source.ts) or the
 * version's file run here with onnxruntime (smoke-local-source.ts). Both answer in the typed form
 * (`{type, shape, data}`), which keeps every output's element type and exact shape.
 */

export type RecordedOutputs = Readonly<Record<string, TypedTensorJson>>

export interface RecordSource {
  /** The version whose outputs are recorded. */
  readonly version: number
  /** Where that version was found and why it is the one, for the report. */
  readonly origin: string
  /** Runs one case's inputs (as a request's `inputs`); throws CommandError naming what was wrong. */
  run(inputs: unknown): Promise<RecordedOutputs>
  close(): Promise<void>
}
