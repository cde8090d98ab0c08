import { onnxTypeName, type OnnxTypeName } from './data-types.js'
import { decodeString, readFields, type ProtoField } from './protobuf.js'

/** A dim as declared in the graph: a number, a symbolic name, or '' when it has neither. */
export type DeclaredDim = number | string

export type ValueType =
  | {
      readonly kind: 'tensor'
      readonly elemType: OnnxTypeName | 'undefined'
      readonly shape: readonly DeclaredDim[] | undefined
    }
  | { readonly kind: 'sequence'; readonly elem: ValueType | undefined }
  | {
      readonly kind: 'map'
      readonly key: OnnxTypeName | 'undefined'
      readonly value: ValueType | undefined
    }
  | { readonly kind: 'optional'; readonly elem: ValueType | undefined }
  | { readonly kind: 'sparse_tensor' }
  | { readonly kind: 'unknown' }

export interface ValueInfo {
  readonly name: string
  readonly type: ValueType
}

export interface ModelInfo {
  readonly irVersion: number
  readonly producer: string
  readonly opsets: readonly { readonly domain: string; readonly version: number }[]
  readonly inputs: readonly ValueInfo[]
  readonly outputs: readonly ValueInfo[]
  /** Before IR v4 initializers were also listed as graph inputs; they are not real inputs. */
  readonly initializerNames: ReadonlySet<string>
  readonly metadata: Readonly<Record<string, string>>
  /** The operators of the main graph (not of subgraphs): `Gemm`, `Relu`, `Loop`. */
  readonly opTypes: ReadonlySet<string>
}

/**
 * Operators whose work depends on an input's values, not only its shape: a Loop's trip count or a
 * Scan's sequence length can come from the request, so one run has no bound a gate could measure.
 */
const CONTROL_FLOW_OPS = ['Loop', 'Scan'] as const

export function hasControlFlow(info: ModelInfo): boolean {
  return CONTROL_FLOW_OPS.some((op) => info.opTypes.has(op))
}

/**
 * Reads a ModelProto's declarations without decoding weights (length-delimited fields we do not
 * need are skipped, so this is cheap even for large models). onnxruntime's metadata cannot tell a
 * scalar from an input of unknown rank (both report `[]`); the graph can.
 * Throws on bytes that are not a ModelProto.
 */
export function readModelInfo(bytes: Uint8Array): ModelInfo {
  let irVersion = 0
  let producer = ''
  const opsets: { domain: string; version: number }[] = []
  const metadata: Record<string, string> = {}
  let graph: Uint8Array | undefined
  for (const f of readFields(bytes)) {
    if (f.field === 1) irVersion = Number(f.int)
    else if (f.field === 2) producer = decodeString(f.bytes)
    else if (f.field === 7) graph = f.bytes
    else if (f.field === 8) {
      let domain = ''
      let version = 0
      for (const o of readFields(f.bytes)) {
        if (o.field === 1) domain = decodeString(o.bytes)
        else if (o.field === 2) version = Number(o.int)
      }
      opsets.push({ domain, version })
    } else if (f.field === 14) {
      let key = ''
      let value = ''
      for (const p of readFields(f.bytes)) {
        if (p.field === 1) key = decodeString(p.bytes)
        else if (p.field === 2) value = decodeString(p.bytes)
      }
      metadata[key] = value
    }
  }
  const inputs: ValueInfo[] = []
  const outputs: ValueInfo[] = []
  const initializerNames = new Set<string>()
  const opTypes = new Set<string>()
  if (graph) {
    for (const g of readFields(graph)) {
      if (g.field === 1) {
        for (const n of readFields(g.bytes)) if (n.field === 4) opTypes.add(decodeString(n.bytes))
      } else if (g.field === 11) inputs.push(readValueInfo(g))
      else if (g.field === 12) outputs.push(readValueInfo(g))
      else if (g.field === 5) {
        for (const t of readFields(g.bytes))
          if (t.field === 8) initializerNames.add(decodeString(t.bytes))
      }
    }
  }
  return { irVersion, producer, opsets, inputs, outputs, initializerNames, metadata, opTypes }
}

function readValueInfo(f: ProtoField): ValueInfo {
  let name = ''
  let type: ValueType = { kind: 'unknown' }
  for (const v of readFields(f.bytes)) {
    if (v.field === 1) name = decodeString(v.bytes)
    else if (v.field === 2) type = readType(v.bytes)
  }
  return { name, type }
}

function elemName(n: bigint): OnnxTypeName | 'undefined' {
  return onnxTypeName(Number(n)) ?? 'undefined'
}

function readType(bytes: Uint8Array): ValueType {
  for (const t of readFields(bytes)) {
    switch (t.field) {
      case 1:
        return readTensorType(t.bytes)
      case 4: {
        let elem: ValueType | undefined
        for (const s of readFields(t.bytes)) if (s.field === 1) elem = readType(s.bytes)
        return { kind: 'sequence', elem }
      }
      case 5: {
        let key: OnnxTypeName | 'undefined' = 'undefined'
        let value: ValueType | undefined
        for (const m of readFields(t.bytes)) {
          if (m.field === 1) key = elemName(m.int)
          else if (m.field === 2) value = readType(m.bytes)
        }
        return { kind: 'map', key, value }
      }
      case 8:
        return { kind: 'sparse_tensor' }
      case 9: {
        let elem: ValueType | undefined
        for (const o of readFields(t.bytes)) if (o.field === 1) elem = readType(o.bytes)
        return { kind: 'optional', elem }
      }
    }
  }
  return { kind: 'unknown' }
}

function readTensorType(bytes: Uint8Array): ValueType {
  let elemType: OnnxTypeName | 'undefined' = 'undefined'
  let shape: DeclaredDim[] | undefined
  for (const t of readFields(bytes)) {
    if (t.field === 1) elemType = elemName(t.int)
    else if (t.field === 2) {
      shape = []
      for (const d of readFields(t.bytes)) {
        if (d.field !== 1) continue
        let dim: DeclaredDim = ''
        for (const x of readFields(d.bytes)) {
          if (x.field === 1) dim = Number(BigInt.asIntN(64, x.int))
          else if (x.field === 2) dim = decodeString(x.bytes)
        }
        shape.push(dim)
      }
    }
  }
  return { kind: 'tensor', elemType, shape }
}
