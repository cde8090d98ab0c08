/**
 * The messages of inference.GRPCInferenceService as @grpc/proto-loader hands them over and takes
 * them back (proto/grpc_predict_v2.proto; loaded with keepCase, int64 as decimal strings, defaults
 * and arrays filled in). Only the fields modelgate reads or writes.
 */

/** An int64 on the wire: a decimal string when received (exact), a number or string when sent. */
export type Int64 = string | number

export interface InferParameter {
  readonly parameter_choice?: string
  readonly bool_param?: boolean
  readonly int64_param?: string
  readonly string_param?: string
  readonly double_param?: number
  readonly uint64_param?: string
}

export interface InferTensorContents {
  readonly bool_contents?: readonly boolean[]
  readonly int_contents?: readonly number[]
  readonly int64_contents?: readonly Int64[]
  readonly uint_contents?: readonly number[]
  readonly uint64_contents?: readonly Int64[]
  readonly fp32_contents?: readonly number[]
  readonly fp64_contents?: readonly number[]
  readonly bytes_contents?: readonly Uint8Array[]
}

export interface InferInputTensor {
  readonly name: string
  readonly datatype: string
  readonly shape: readonly Int64[]
  readonly parameters: Readonly<Record<string, InferParameter>>
  readonly contents: InferTensorContents | null
}

export interface ModelInferRequest {
  readonly model_name: string
  readonly model_version: string
  readonly id: string
  readonly parameters: Readonly<Record<string, InferParameter>>
  readonly inputs: readonly InferInputTensor[]
  readonly outputs: readonly { readonly name: string }[]
  readonly raw_input_contents: readonly Buffer[]
}

export interface InferOutputTensor {
  readonly name: string
  readonly datatype: string
  readonly shape: readonly Int64[]
  readonly contents?: InferTensorContents
}

export interface ModelInferResponse {
  readonly model_name: string
  readonly model_version: string
  readonly id: string
  readonly outputs: readonly InferOutputTensor[]
  readonly raw_output_contents: readonly Buffer[]
}

/** ModelReadyRequest, ModelMetadataRequest. */
export interface ModelRequest {
  readonly name: string
  readonly version: string
}

export interface RepositoryIndexRequest {
  readonly repository_name: string
  readonly ready: boolean
}

/** RepositoryModelLoadRequest, RepositoryModelUnloadRequest. */
export interface RepositoryModelRequest {
  readonly repository_name: string
  readonly model_name: string
}
