import type { InferenceSession } from 'onnxruntime-node'
import type { ModelInfo, ValueType } from '../onnx/model-info.js'
import { isElementType, type ElementType } from './element-type.js'

/** A fixed size, a symbolic name (`"batch"`), or null for a dynamic dim with no name. */
export type Dim = number | string | null

export interface TensorSpec {
  readonly name: string
  readonly type: ElementType
  /** null: rank unknown (the graph declares no shape); any shape is accepted. */
  readonly shape: readonly Dim[] | null
}

export interface OmittedOutput {
  readonly name: string
  readonly reason: string
}

export interface Signature {
  readonly inputs: readonly TensorSpec[]
  /** Outputs that are served: tensors of a type onnxruntime-node can return. */
  readonly outputs: readonly TensorSpec[]
  /** Non-tensor outputs (sequence, map) beside tensor ones: left out of every response. */
  readonly omittedOutputs: readonly OmittedOutput[]
}

export class UnservableModelError extends Error {}

type ValueMetadata = InferenceSession.ValueMetadata

/**
 * Builds the signature from onnxruntime's session metadata (names, types), refined by the graph
 * declarations where onnxruntime is ambiguous: it reports `[]` for both a scalar and an input of
 * unknown rank. Throws UnservableModelError for models whose I/O onnxruntime-node cannot carry.
 */
export function readSignature(
  inputMetadata: readonly ValueMetadata[],
  outputMetadata: readonly ValueMetadata[],
  info: ModelInfo | undefined,
): Signature {
  const declared = new Map<string, ValueType>()
  for (const v of [...(info?.inputs ?? []), ...(info?.outputs ?? [])]) declared.set(v.name, v.type)

  const inputs = inputMetadata.map((m) => {
    if (!m.isTensor)
      throw new UnservableModelError(
        `input '${m.name}' is not a tensor (${describe(declared.get(m.name))}); onnxruntime-node cannot feed it`,
      )
    return tensorSpec(m, declared.get(m.name), 'input')
  })
  const outputs: TensorSpec[] = []
  const omittedOutputs: OmittedOutput[] = []
  for (const m of outputMetadata) {
    if (!m.isTensor) {
      omittedOutputs.push({
        name: m.name,
        reason: `${describe(declared.get(m.name))} output: onnxruntime-node returns tensors only`,
      })
      continue
    }
    if (m.name === '__proto__') {
      // onnxruntime-common collects results in a plain object, where this key sets the prototype:
      // such an output can never be returned, and asking for it (or a subset) fails the run.
      throw new UnservableModelError(
        "output '__proto__' cannot be returned by onnxruntime-node (its result object drops that key)",
      )
    }
    outputs.push(tensorSpec(m, declared.get(m.name), 'output'))
  }
  if (outputs.length === 0) {
    throw new UnservableModelError(
      `the model has no tensor outputs onnxruntime-node can return (${omittedOutputs.map((o) => `'${o.name}': ${o.reason}`).join('; ')})`,
    )
  }
  return { inputs, outputs, omittedOutputs }
}

function tensorSpec(
  m: ValueMetadata & { isTensor: true },
  declared: ValueType | undefined,
  role: 'input' | 'output',
): TensorSpec {
  const type = String(m.type)
  if (!isElementType(type)) {
    const why =
      type === 'int4' || type === 'uint4'
        ? 'onnxruntime-node aborts the whole process when it returns or takes a 4-bit tensor'
        : 'onnxruntime-node cannot carry this element type'
    throw new UnservableModelError(`${role} '${m.name}' has element type ${type}: ${why}`)
  }
  const shape: Dim[] | null =
    declared?.kind === 'tensor' && declared.shape === undefined
      ? null
      : m.shape.map((d) => (typeof d === 'number' ? (d >= 0 ? d : null) : d === '' ? null : d))
  return { name: m.name, type, shape }
}

function describe(type: ValueType | undefined): string {
  if (!type) return 'non-tensor'
  switch (type.kind) {
    case 'tensor':
      return `tensor(${type.elemType})`
    case 'sequence':
      return `sequence(${describe(type.elem)})`
    case 'map':
      return `map(${type.key}, ${describe(type.value)})`
    case 'optional':
      return `optional(${describe(type.elem)})`
    case 'sparse_tensor':
      return 'sparse tensor'
    case 'unknown':
      return 'unknown type'
  }
}
