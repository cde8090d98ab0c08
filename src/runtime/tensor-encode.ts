import type { Tensor } from 'onnxruntime-node'
import type { ElementType } from './element-type.js'
import { ELEMENT_WRITERS, type JsonElement } from './element-values.js'

export type OutputFormat = 'nested' | 'typed'

export type NestedValue = JsonElement | NestedValue[]

export interface TypedTensorJson {
  readonly type: ElementType
  readonly shape: readonly number[]
  readonly data: JsonElement[]
}

/**
 * ort.Tensor -> JSON. `nested` gives nested arrays (a bare value for a scalar), as applications
 * want them; `typed` gives `{"type", "shape", "data"}` with flat data, which keeps the exact shape
 * even for empty tensors (a nested `[]` cannot say whether it was [0] or [0, 3]).
 */
export function encodeTensor(tensor: Tensor, format: OutputFormat): NestedValue | TypedTensorJson {
  const type = tensor.type as ElementType
  const flat = flatValues(tensor, type)
  const dims = tensor.dims as readonly number[]
  if (format === 'typed') return { type, shape: [...dims], data: flat }
  return nest(flat, dims)
}

function flatValues(tensor: Tensor, type: ElementType): JsonElement[] {
  const write = ELEMENT_WRITERS[type] as ((value: unknown) => JsonElement) | undefined
  const data = tensor.data as ArrayLike<unknown>
  const n = data.length
  const out = new Array<JsonElement>(n)
  if (write === undefined) {
    for (let i = 0; i < n; i++) out[i] = data[i] as JsonElement
  } else {
    for (let i = 0; i < n; i++) out[i] = write(data[i])
  }
  return out
}

function nest(flat: JsonElement[], dims: readonly number[]): NestedValue {
  if (dims.length === 0) return flat[0]!
  if (dims.length === 1) return flat
  return nestLevel(flat, dims, 0, 0)
}

function nestLevel(
  flat: JsonElement[],
  dims: readonly number[],
  depth: number,
  offset: number,
): NestedValue[] {
  const n = dims[depth]!
  const out = new Array<NestedValue>(n)
  if (depth === dims.length - 1) {
    for (let i = 0; i < n; i++) out[i] = flat[offset + i]!
    return out
  }
  let stride = 1
  for (let d = depth + 1; d < dims.length; d++) stride *= dims[d]!
  for (let i = 0; i < n; i++) out[i] = nestLevel(flat, dims, depth + 1, offset + i * stride)
  return out
}
