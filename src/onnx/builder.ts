import { ONNX_DATA_TYPES, type OnnxTypeName } from './data-types.js'
import { ProtoWriter } from './protobuf.js'

/**
 * A small ONNX model writer: enough to build real models for tests, the example repository and the
 * benchmarks without Python. Field numbers follow onnx/onnx.proto3.
 */

export type DimSpec = number | string

export type TypeSpec =
  | { readonly tensor: OnnxTypeName; readonly shape?: readonly DimSpec[] | undefined }
  | { readonly sequence: TypeSpec }
  | { readonly map: readonly [OnnxTypeName, TypeSpec] }

export interface ValueSpec {
  readonly name: string
  /** Shorthand for a tensor: element type name; `shape` undefined means unknown rank. */
  readonly type: OnnxTypeName | TypeSpec
  readonly shape?: readonly DimSpec[] | undefined
}

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | readonly string[]
  | readonly boolean[]

export interface TensorSpec {
  readonly name?: string
  readonly type: OnnxTypeName
  readonly dims: readonly number[]
  /** float16 as Uint16Array bit patterns, bool as boolean[] or Uint8Array. */
  readonly data: TensorData
}

export type AttributeValue =
  | { readonly f: number }
  | { readonly i: number | bigint }
  | { readonly s: string }
  | { readonly t: TensorSpec }
  | { readonly floats: readonly number[] }
  | { readonly ints: readonly (number | bigint)[] }
  | { readonly strings: readonly string[] }
  /** A subgraph (the body of Loop or Scan, the branches of If). */
  | { readonly graph: GraphSpec }

export interface NodeSpec {
  readonly op: string
  readonly inputs: readonly string[]
  readonly outputs: readonly string[]
  readonly name?: string
  readonly domain?: string
  readonly attributes?: Readonly<Record<string, AttributeValue>>
}

/** A graph: a model's main graph, or a subgraph held by a node's attribute. */
export interface GraphSpec {
  readonly inputs: readonly ValueSpec[]
  readonly outputs: readonly ValueSpec[]
  readonly nodes: readonly NodeSpec[]
  readonly initializers?: readonly TensorSpec[]
  readonly graphName?: string
}

export interface ModelSpec extends GraphSpec {
  /** Default: ai.onnx opset 17. */
  readonly opsets?: readonly { readonly domain: string; readonly version: number }[]
  readonly irVersion?: number
  readonly producer?: string
  readonly metadata?: Readonly<Record<string, string>>
}

const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const

export function buildModel(spec: ModelSpec): Uint8Array {
  const w = new ProtoWriter()
  w.varint(1, spec.irVersion ?? 8)
  w.string(2, spec.producer ?? 'modelgate-onnx-builder')
  w.message(7, (g) => writeGraph(g, spec))
  for (const o of spec.opsets ?? [{ domain: '', version: 17 }]) {
    w.message(8, (m) => m.string(1, o.domain).varint(2, o.version))
  }
  for (const [key, value] of Object.entries(spec.metadata ?? {})) {
    w.message(14, (m) => m.string(1, key).string(2, value))
  }
  return w.finish()
}

function writeGraph(g: ProtoWriter, spec: GraphSpec): void {
  spec.nodes.forEach((node, index) => g.message(1, (n) => writeNode(n, node, index)))
  g.string(2, spec.graphName ?? 'graph')
  for (const init of spec.initializers ?? []) g.message(5, (t) => writeTensor(t, init))
  for (const input of spec.inputs) g.message(11, (v) => writeValueInfo(v, input))
  for (const output of spec.outputs) g.message(12, (v) => writeValueInfo(v, output))
}

function writeNode(n: ProtoWriter, node: NodeSpec, index: number): void {
  for (const i of node.inputs) n.string(1, i)
  for (const o of node.outputs) n.string(2, o)
  n.string(3, node.name ?? `${node.op}_${index}`)
  n.string(4, node.op)
  for (const [name, value] of Object.entries(node.attributes ?? {}))
    n.message(5, (a) => writeAttribute(a, name, value))
  if (node.domain) n.string(7, node.domain)
}

function writeAttribute(a: ProtoWriter, name: string, value: AttributeValue): void {
  a.string(1, name)
  if ('f' in value) a.float(2, value.f).varint(20, AttributeType.FLOAT)
  else if ('i' in value) a.varint(3, value.i).varint(20, AttributeType.INT)
  else if ('s' in value) a.string(4, value.s).varint(20, AttributeType.STRING)
  else if ('t' in value)
    a.message(5, (t) => writeTensor(t, value.t)).varint(20, AttributeType.TENSOR)
  else if ('floats' in value) a.packedFloats(7, value.floats).varint(20, AttributeType.FLOATS)
  else if ('ints' in value) a.packedVarints(8, value.ints).varint(20, AttributeType.INTS)
  else if ('graph' in value)
    a.message(6, (g) => writeGraph(g, value.graph)).varint(20, AttributeType.GRAPH)
  else {
    for (const s of value.strings) a.string(9, s)
    a.varint(20, AttributeType.STRINGS)
  }
}

function writeValueInfo(v: ProtoWriter, value: ValueSpec): void {
  v.string(1, value.name)
  const type: TypeSpec =
    typeof value.type === 'string' ? { tensor: value.type, shape: value.shape } : value.type
  v.message(2, (t) => writeType(t, type))
}

function writeType(t: ProtoWriter, type: TypeSpec): void {
  if ('tensor' in type) {
    t.message(1, (tt) => {
      tt.varint(1, ONNX_DATA_TYPES[type.tensor])
      if (type.shape) {
        const shape = type.shape
        tt.message(2, (s) => {
          for (const dim of shape) {
            s.message(1, (d) => {
              if (typeof dim === 'number') d.varint(1, dim)
              else if (dim !== '') d.string(2, dim)
            })
          }
        })
      }
    })
  } else if ('sequence' in type) {
    t.message(4, (s) => s.message(1, (e) => writeType(e, type.sequence)))
  } else {
    t.message(5, (m) =>
      m.varint(1, ONNX_DATA_TYPES[type.map[0]]).message(2, (e) => writeType(e, type.map[1])),
    )
  }
}

function writeTensor(t: ProtoWriter, tensor: TensorSpec): void {
  t.packedVarints(1, tensor.dims)
  t.varint(2, ONNX_DATA_TYPES[tensor.type])
  if (tensor.name !== undefined) t.string(8, tensor.name)
  const data = tensor.data
  if (tensor.type === 'string') {
    for (const s of data as readonly string[]) t.string(6, s)
  } else if (Array.isArray(data)) {
    t.bytes(
      9,
      Uint8Array.from(data as readonly boolean[], (b) => (b ? 1 : 0)),
    )
  } else {
    const view = data as Exclude<TensorData, readonly string[] | readonly boolean[]>
    t.bytes(9, littleEndianBytes(view))
  }
}

function littleEndianBytes(view: ArrayBufferView): Uint8Array {
  // Every platform Node supports in production is little-endian, as ONNX raw_data requires.
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength))
}
