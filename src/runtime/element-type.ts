/**
 * The element types onnxruntime-node can carry in and out of a session, and how each travels in
 * memory. int4/uint4 (the process aborts when one is an output), bfloat16 and float8 (no session)
 * and complex types are deliberately absent: a model that uses them is refused at load.
 */
export const ELEMENT_TYPES = [
  'float32',
  'float64',
  'float16',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'bool',
  'string',
] as const

export type ElementType = (typeof ELEMENT_TYPES)[number]

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array

/** What a tensor's flat data is in memory: typed arrays, except string (string[]). */
export type TensorStorage = NumericArray | string[]

type TypedArrayConstructor = new (length: number) => NumericArray

interface ElementTypeInfo {
  /** float16 travels as Uint16Array bit patterns and bool as Uint8Array, as onnxruntime-node wants. */
  readonly array: TypedArrayConstructor | undefined
  readonly bytes: number
}

export const ELEMENT_TYPE_INFO: Readonly<Record<ElementType, ElementTypeInfo>> = {
  float32: { array: Float32Array, bytes: 4 },
  float64: { array: Float64Array, bytes: 8 },
  float16: { array: Uint16Array, bytes: 2 },
  int8: { array: Int8Array, bytes: 1 },
  int16: { array: Int16Array, bytes: 2 },
  int32: { array: Int32Array, bytes: 4 },
  int64: { array: BigInt64Array, bytes: 8 },
  uint8: { array: Uint8Array, bytes: 1 },
  uint16: { array: Uint16Array, bytes: 2 },
  uint32: { array: Uint32Array, bytes: 4 },
  uint64: { array: BigUint64Array, bytes: 8 },
  bool: { array: Uint8Array, bytes: 1 },
  string: { array: undefined, bytes: 0 },
}

const names = new Set<string>(ELEMENT_TYPES)

export function isElementType(name: string): name is ElementType {
  return names.has(name)
}

export function allocate(type: ElementType, length: number): TensorStorage {
  const ctor = ELEMENT_TYPE_INFO[type].array
  return ctor ? new ctor(length) : new Array<string>(length)
}
