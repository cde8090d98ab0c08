import { InvalidRequestError, InvalidTypeError } from '../errors.js'
import type { OutputPlan } from '../dataplane/output-limit.js'
import type { ElementType, TensorStorage } from '../runtime/element-type.js'
import type { Fetches } from '../runtime/feeds.js'
import { encodeBinaryTensor, textOf } from '../v2/binary.js'
import { isV2Datatype, type V2Datatype, v2Datatype } from '../v2/datatypes.js'
import type { V2InferRequest } from '../v2/inference.js'
import type {
  InferInputTensor,
  InferOutputTensor,
  InferTensorContents,
  Int64,
  ModelInferRequest,
  ModelInferResponse,
} from './messages.js'

/**
 * ModelInferRequest <-> the REST codec's V2 request: raw_input_contents become the binary tensor
 * data extension's sections (the same little-endian layout, BYTES length-prefixed alike) and the
 * typed contents become `data`, so v2Feeds checks and decodes both as it does for REST.
 */

/** The contents field each datatype travels in; FP16 has none (raw_input_contents only). */
const CONTENTS_FIELD: Readonly<Record<V2Datatype, keyof InferTensorContents | undefined>> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP16: undefined,
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
}

export interface GrpcInferRequest {
  readonly request: V2InferRequest
  /** The raw inputs, back to back, as the binary extension lays them out after its header. */
  readonly binary: Buffer | undefined
  /** Answer in raw_output_contents (the request sent raw_input_contents), else in typed contents. */
  readonly raw: boolean
}

export function grpcInferRequest(message: ModelInferRequest): GrpcInferRequest {
  const raw = message.raw_input_contents
  const outputs = message.outputs.map((o) => ({ name: o.name }))
  const base = { id: message.id, outputs }
  if (raw.length > 0) {
    if (raw.length !== message.inputs.length)
      throw new InvalidRequestError(
        `raw_input_contents has ${raw.length} entries for ${message.inputs.length} inputs: one per input, in input order`,
      )
    const inputs = message.inputs.map((input, i) => {
      if (input.contents && firstFilled(input.contents) !== undefined)
        throw new InvalidRequestError(
          `input '${input.name}': has contents while raw_input_contents is used`,
        )
      return { ...tensorHead(input), parameters: { binary_data_size: raw[i]!.length } }
    })
    return { request: { ...base, inputs }, binary: Buffer.concat(raw), raw: true }
  }
  const inputs = message.inputs.map((input) => ({
    ...tensorHead(input),
    data: contentsData(input),
  }))
  return { request: { ...base, inputs }, binary: undefined, raw: false }
}

function tensorHead(input: InferInputTensor) {
  return { name: input.name, datatype: input.datatype, shape: input.shape.map(dim) }
}

/** An int64 dim, exact: a number while it is one, a BigInt beyond (readShape refuses it by name). */
function dim(value: Int64): number | bigint {
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : BigInt(value)
}

/** An input's typed contents as the flat `data` the tensor decoder reads (it checks every value). */
function contentsData(input: InferInputTensor): unknown[] {
  const where = `input '${input.name}'`
  // An unknown datatype is refused by v2Feeds, with the model's own datatype in the message.
  if (!isV2Datatype(input.datatype)) return []
  const field = CONTENTS_FIELD[input.datatype]
  if (field === undefined)
    throw new InvalidRequestError(
      `${where}: ${input.datatype} has no contents field in the protocol; send it in raw_input_contents`,
    )
  const contents = input.contents ?? {}
  const values = contents[field] ?? []
  const other = firstFilled(contents)
  if (values.length === 0 && other !== undefined && other !== field)
    throw new InvalidTypeError(`${where}: ${input.datatype} travels in ${field}, got ${other}`)
  if (field === 'bytes_contents')
    return (values as readonly Uint8Array[]).map((b, i) =>
      textOf(b, `${where}: BYTES element ${i}`),
    )
  return values as unknown[]
}

function firstFilled(contents: InferTensorContents): keyof InferTensorContents | undefined {
  return (Object.keys(contents) as (keyof InferTensorContents)[]).find(
    (k) => (contents[k]?.length ?? 0) > 0,
  )
}

/** How the answer writes its outputs, for the size check: a few bytes an element, raw or typed. */
export const GRPC_OUTPUT_PLAN: OutputPlan = {
  layout: () => 'binary',
  remedy: () => 'ask for fewer rows, or for fewer outputs with "outputs"',
}

export function grpcInferResponse(
  raw: boolean,
  model: string,
  version: number,
  fetched: Fetches,
  names: readonly string[],
  id: string,
): ModelInferResponse {
  const tensors = names.map((name) => ({ name, tensor: fetched[name]! }))
  // FP16 has no contents field: an answer holding one is raw throughout, as the protocol has
  // raw_output_contents for every output or for none.
  const allRaw = raw || tensors.some(({ tensor }) => tensor.type === 'float16')
  const outputs = tensors.map(({ name, tensor }): InferOutputTensor => {
    const type = tensor.type as ElementType
    const head = { name, datatype: v2Datatype(type), shape: [...tensor.dims] }
    return allRaw ? head : { ...head, contents: typedContents(tensor.data as TensorStorage, type) }
  })
  const rawOutputs = allRaw
    ? tensors.map(({ tensor }) =>
        encodeBinaryTensor(tensor.data as TensorStorage, tensor.type as ElementType),
      )
    : []
  return {
    model_name: model,
    model_version: String(version),
    id,
    outputs,
    raw_output_contents: rawOutputs,
  }
}

/** int64/uint64 as decimal strings: exact on the wire whatever their size. */
function typedContents(data: TensorStorage, type: ElementType): InferTensorContents {
  switch (type) {
    case 'bool':
      return { bool_contents: Array.from(data as Uint8Array, (v) => v !== 0) }
    case 'int8':
    case 'int16':
    case 'int32':
      return { int_contents: Array.from(data as Int32Array) }
    case 'uint8':
    case 'uint16':
    case 'uint32':
      return { uint_contents: Array.from(data as Uint32Array) }
    case 'int64':
      return { int64_contents: Array.from(data as BigInt64Array, String) }
    case 'uint64':
      return { uint64_contents: Array.from(data as BigUint64Array, String) }
    case 'float32':
      return { fp32_contents: Array.from(data as Float32Array) }
    case 'float64':
      return { fp64_contents: Array.from(data as Float64Array) }
    case 'string':
      return { bytes_contents: (data as string[]).map((s) => Buffer.from(s, 'utf8')) }
    default:
      throw new InvalidTypeError(`${type} has no contents field in the protocol`)
  }
}
