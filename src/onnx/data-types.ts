/**
 * ONNX TensorProto.DataType numbers, named as onnxruntime-js names element types
 * (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto3, `enum DataType`).
 */
export const ONNX_DATA_TYPES = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  complex64: 14,
  complex128: 15,
  bfloat16: 16,
  float8e4m3fn: 17,
  float8e4m3fnuz: 18,
  float8e5m2: 19,
  float8e5m2fnuz: 20,
  uint4: 21,
  int4: 22,
  float4e2m1: 23,
} as const

export type OnnxTypeName = keyof typeof ONNX_DATA_TYPES

const byNumber = new Map<number, OnnxTypeName>(
  Object.entries(ONNX_DATA_TYPES).map(([name, n]) => [n, name as OnnxTypeName]),
)

export function onnxTypeName(dataType: number): OnnxTypeName | undefined {
  return byNumber.get(dataType)
}
