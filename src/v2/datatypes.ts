import type { ElementType } from '../runtime/element-type.js'

/**
 * KServe V2 / Open Inference Protocol datatypes and the element types they travel as
 * (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/#tensor-data-types).
 */
export const V2_TO_ELEMENT = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
} as const satisfies Record<string, ElementType>

export type V2Datatype = keyof typeof V2_TO_ELEMENT

const ELEMENT_TO_V2 = Object.fromEntries(
  Object.entries(V2_TO_ELEMENT).map(([v2, el]) => [el, v2]),
) as Record<ElementType, V2Datatype>

export function v2Datatype(type: ElementType): V2Datatype {
  return ELEMENT_TO_V2[type]
}

export function isV2Datatype(name: string): name is V2Datatype {
  return Object.hasOwn(V2_TO_ELEMENT, name)
}
