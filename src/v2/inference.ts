import { Tensor } from 'onnxruntime-node'
import { z } from 'zod'
import {
  InvalidRequestError,
  InvalidTypeError,
  MissingInputError,
  UnknownInputError,
  UnknownOutputError,
} from '../errors.js'
import type { OutputPlan } from '../dataplane/output-limit.js'
import type { ElementType, TensorStorage } from '../runtime/element-type.js'
import { ELEMENT_WRITERS, type JsonElement } from '../runtime/element-values.js'
import type { Feeds, Fetches } from '../runtime/feeds.js'
import type { Signature } from '../runtime/signature.js'
import { checkShape, decodeTensor, fedDims, readShape } from '../runtime/tensor-decode.js'
import { decodeBinaryTensor, encodeBinaryTensor } from './binary.js'
import { isV2Datatype, V2_TO_ELEMENT, v2Datatype } from './datatypes.js'

/** The V2 inference request (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/). */
const parameters = z.record(z.string(), z.unknown())

const v2InputSchema = z.object({
  name: z.string(),
  // Dims are checked by the tensor decoder (readShape), whose 400 names the input and the dim;
  // one beyond 2^53 arrives as a BigInt from the exact parser.
  shape: z.array(z.union([z.number(), z.bigint()])),
  datatype: z.string(),
  parameters: parameters.optional(),
  data: z.unknown().optional(),
})

export const v2InferRequestSchema = z.object({
  id: z.string().optional(),
  parameters: parameters.optional(),
  inputs: z.array(v2InputSchema),
  outputs: z.array(z.object({ name: z.string(), parameters: parameters.optional() })).optional(),
})

export type V2InferRequest = z.infer<typeof v2InferRequestSchema>

/**
 * The request's tensors as feeds, checked against the signature: JSON `data` (flat or nested), or
 * raw bytes from the binary section (`parameters.binary_data_size`, in input order).
 */
export function v2Feeds(
  request: V2InferRequest,
  binary: Buffer | undefined,
  signature: Signature,
): Feeds {
  const feeds = Object.create(null) as Feeds
  let offset = 0
  for (const input of request.inputs) {
    const spec = signature.inputs.find((s) => s.name === input.name)
    const where = `input '${input.name}'`
    if (!spec)
      throw new UnknownInputError(
        `unknown input '${input.name}'; the model takes ${signature.inputs.map((s) => `'${s.name}'`).join(', ') || 'no inputs'}`,
      )
    if (Object.hasOwn(feeds, input.name)) throw new InvalidRequestError(`${where} is given twice`)
    if (!isV2Datatype(input.datatype))
      throw new InvalidTypeError(`${where}: unknown datatype '${input.datatype}'`)
    const type = V2_TO_ELEMENT[input.datatype]
    if (type !== spec.type)
      throw new InvalidTypeError(
        `${where}: the model takes ${v2Datatype(spec.type)}, got ${input.datatype}`,
      )
    const size = input.parameters?.binary_data_size
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
        throw new InvalidRequestError(`${where}: binary_data_size must be a byte count`)
      if (!binary || offset + size > binary.length) {
        throw new InvalidRequestError(
          `${where}: binary_data_size ${size} goes past the end of the binary data (${binary?.length ?? 0} bytes after the JSON header)`,
        )
      }
      if (input.data !== undefined)
        throw new InvalidRequestError(`${where}: has both "data" and binary_data_size`)
      const shape = readShape(input.shape, spec, where)
      const count = shape.reduce((a, b) => a * b, 1)
      const data = decodeBinaryTensor(binary.subarray(offset, offset + size), type, count, where)
      offset += size
      checkShape(shape, spec, where)
      feeds[input.name] = new Tensor(type, data as never, fedDims(shape, spec))
    } else {
      if (input.data === undefined)
        throw new InvalidRequestError(`${where}: no "data" and no binary_data_size`)
      feeds[input.name] = decodeTensor({ type, shape: input.shape, data: input.data }, spec)
    }
  }
  if (binary && offset !== binary.length) {
    throw new InvalidRequestError(
      `the binary data is ${binary.length} bytes, the inputs' binary_data_size add up to ${offset}`,
    )
  }
  for (const spec of signature.inputs) {
    if (!Object.hasOwn(feeds, spec.name))
      throw new MissingInputError(`missing input '${spec.name}'`)
  }
  return feeds
}

/** The outputs asked for (all served ones when the request names none), in the order asked. */
export function v2OutputNames(
  request: V2InferRequest,
  signature: Signature,
  served: readonly string[],
): readonly string[] {
  if (!request.outputs || request.outputs.length === 0) return served
  const names = request.outputs.map((o) => o.name)
  for (const name of names) {
    if (served.includes(name)) continue
    const omitted = signature.omittedOutputs.find((o) => o.name === name)
    throw new UnknownOutputError(
      omitted ? `output '${name}' is not served: ${omitted.reason}` : `unknown output '${name}'`,
    )
  }
  if (new Set(names).size !== names.length)
    throw new InvalidRequestError('an output is asked for twice')
  return names
}

export interface V2Response {
  /** The JSON header, with BigInt values where int64/uint64 data must stay exact. */
  readonly header: Record<string, unknown>
  /** Binary sections in output order; empty when every output is JSON. */
  readonly binary: readonly Buffer[]
}

/** Binary when the output's own `binary_data` says so, else when `binary_data_output` does. */
function wantsBinary(request: V2InferRequest, name: string): boolean {
  const own = request.outputs?.find((o) => o.name === name)?.parameters?.binary_data
  return (own ?? request.parameters?.binary_data_output) === true
}

/** How the answer to `request` writes each output, for the size check before it is built. */
export function v2OutputPlan(request: V2InferRequest): OutputPlan {
  return {
    layout: (name) => (wantsBinary(request, name) ? 'binary' : 'flat'),
    remedy: (layouts) =>
      layouts.has('flat')
        ? 'ask for fewer rows, for fewer outputs with "outputs", or for binary data ("parameters": {"binary_data_output": true}, ' +
          'the binary tensor data extension: a few bytes an element instead of up to 26)'
        : 'ask for fewer rows, or for fewer outputs with "outputs"',
  }
}

/** The response; outputs asked for as binary (or all, with binary_data_output) go after the header. */
export function v2Response(
  request: V2InferRequest,
  model: string,
  version: number,
  fetched: Fetches,
  names: readonly string[],
  id: string,
): V2Response {
  const binary: Buffer[] = []
  const outputs = names.map((name) => {
    const tensor = fetched[name]!
    const type = tensor.type as ElementType
    const base = { name, datatype: v2Datatype(type), shape: [...tensor.dims] }
    if (wantsBinary(request, name)) {
      const bytes = encodeBinaryTensor(tensor.data as TensorStorage, type)
      binary.push(bytes)
      return { ...base, parameters: { binary_data_size: bytes.length } }
    }
    return { ...base, data: jsonData(tensor.data as TensorStorage, type) }
  })
  // The prediction's id: the request's own, or the one made up for it (feedback names it).
  const header: Record<string, unknown> = {
    id,
    model_name: model,
    model_version: String(version),
    outputs,
  }
  return { header, binary }
}

/** Flat JSON data; int64/uint64 stay BigInt (written as exact number literals), non-finite floats as strings. */
function jsonData(data: TensorStorage, type: ElementType): (JsonElement | bigint)[] {
  if (type === 'int64' || type === 'uint64') return Array.from(data as BigInt64Array)
  const write = ELEMENT_WRITERS[type] as ((value: unknown) => JsonElement) | undefined
  return write
    ? Array.from(data as ArrayLike<unknown>, write)
    : Array.from(data as ArrayLike<JsonElement>)
}

/** The shapes a model declares, as V2 metadata writes them: -1 for a dynamic dim. */
export function v2Shape(shape: readonly (number | string | null)[] | null): number[] {
  if (shape === null) return [-1]
  return shape.map((d) => (typeof d === 'number' ? d : -1))
}
