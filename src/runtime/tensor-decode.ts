import { Tensor } from 'onnxruntime-node'
import { InvalidShapeError, InvalidTypeError, InvalidValueError } from '../errors.js'
import { allocate, isElementType, type ElementType, type TensorStorage } from './element-type.js'
import { ELEMENT_READERS, ElementError, show, type ElementReader } from './element-values.js'
import type { Dim, TensorSpec } from './signature.js'

/** The largest dim a request may declare: onnxruntime's practical bound (it refuses 2^32 and up). */
const MAX_DIM = 2 ** 31 - 1

/**
 * The highest rank, and so the deepest nesting, taken for an input whose model declares no rank.
 * An input of declared rank r is never walked deeper than r: no request makes the decoder recurse
 * (or JSON.stringify a message) through a 100,000-deep array.
 */
export const MAX_UNKNOWN_RANK = 64

/**
 * JSON -> ort.Tensor for one input, checked against its spec before the runtime sees it.
 * Accepted forms: a nested array (shape inferred, ragged arrays refused), a bare scalar, or a typed
 * object `{"type", "shape", "data"}` with flat (or nested) data. `dims` is accepted for `shape`,
 * as the ONNX test data and many exporters write it.
 */
export function decodeTensor(value: unknown, spec: TensorSpec): Tensor {
  const where = `input '${spec.name}'`
  let dims: number[]
  let data: TensorStorage
  if (Array.isArray(value)) {
    dims = inferDims(value, spec.shape, where)
    data = fillNested(value, dims, spec.type, where)
  } else if (value !== null && typeof value === 'object') {
    ;({ dims, data } = decodeTypedObject(value as Record<string, unknown>, spec, where))
  } else {
    dims = []
    data = allocate(spec.type, 1)
    writeElement(data, 0, value, ELEMENT_READERS[spec.type], where, dims)
  }
  checkShape(dims, spec, where)
  return new Tensor(spec.type, data as never, fedDims(dims, spec))
}

/**
 * The dims a checked tensor is fed with: its own, except that `[x]` for a declared scalar is fed as
 * the scalar. onnxruntime's input check takes either, but a kernel written for a scalar need not
 * (Einsum "->" refuses a [1] input: a 500 for a request the server had accepted).
 */
export function fedDims(dims: number[], spec: TensorSpec): number[] {
  return spec.shape !== null && spec.shape.length === 0 && dims.length === 1 ? [] : dims
}

const TYPED_KEYS = new Set(['type', 'datatype', 'shape', 'dims', 'data'])

function decodeTypedObject(
  obj: Record<string, unknown>,
  spec: TensorSpec,
  where: string,
): { dims: number[]; data: TensorStorage } {
  for (const key of Object.keys(obj)) {
    if (!TYPED_KEYS.has(key)) {
      throw new InvalidTypeError(
        `${where}: unexpected key '${key}'; a typed tensor is {"type", "shape", "data"}`,
      )
    }
  }
  const type = obj.type ?? obj.datatype
  if (type !== undefined) {
    if (typeof type !== 'string' || !isElementType(type)) {
      throw new InvalidTypeError(`${where}: unknown element type ${show(type)}`)
    }
    if (type !== spec.type)
      throw new InvalidTypeError(`${where}: the model takes ${spec.type}, got ${type}`)
  }
  const shape = obj.shape ?? obj.dims
  const raw = obj.data
  if (!Array.isArray(raw))
    throw new InvalidTypeError(`${where}: "data" must be an array, got ${show(raw)}`)
  if (shape === undefined) {
    const dims = inferDims(raw, spec.shape, where)
    return { dims, data: fillNested(raw, dims, spec.type, where) }
  }
  const dims = readShape(shape, spec, where)
  const count = dims.reduce((a, b) => a * b, 1)
  if (raw.length > 0 && Array.isArray(raw[0])) {
    // Nested data with an explicit shape: it must be well formed itself, then is reshaped (its
    // nesting need not be the shape's, so only the unknown-rank bound applies to it).
    const nestedDims = inferDims(raw, null, where)
    const data = fillNested(raw, nestedDims, spec.type, where)
    if (data.length !== count) {
      throw new InvalidShapeError(
        `${where}: shape [${dims.join(', ')}] holds ${count} elements, data has ${data.length}`,
      )
    }
    return { dims, data }
  }
  if (raw.length !== count) {
    throw new InvalidShapeError(
      `${where}: shape [${dims.join(', ')}] holds ${count} elements, data has ${raw.length}`,
    )
  }
  const data = allocate(spec.type, count)
  const read = ELEMENT_READERS[spec.type]
  for (let i = 0; i < count; i++) writeElement(data, i, raw[i], read, where, dims)
  return { dims, data }
}

/**
 * A shape as a request declares it (a typed object's, or a V2 input's): non-negative integers, each
 * at most MAX_DIM, and no more of them than an unknown rank takes. Checked before anything is
 * allocated or run for it: a zero-element tensor can still declare large dims, but never ones
 * that make the runtime's own size arithmetic overflow.
 */
export function readShape(shape: unknown, spec: TensorSpec, where: string): number[] {
  if (!Array.isArray(shape))
    throw new InvalidShapeError(
      `${where}: "shape" must be an array of non-negative integers, got ${show(shape)}`,
    )
  if (spec.shape === null && shape.length > MAX_UNKNOWN_RANK) {
    throw new InvalidShapeError(
      `${where}: "shape" has rank ${shape.length}; an input the model declares without a shape takes rank ${MAX_UNKNOWN_RANK} at most`,
    )
  }
  let size = 1
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i]
    // A BigInt is a dim too long for a double, as the exact JSON parser returns it.
    if (typeof d === 'bigint' ? d > 0n : typeof d === 'number' && d > MAX_DIM) {
      throw new InvalidShapeError(
        `${where}: dim ${i} is ${show(d)}, more than ${MAX_DIM} (2^31 - 1), the largest dim onnxruntime takes`,
      )
    }
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new InvalidShapeError(
        `${where}: "shape" must be an array of non-negative integers; dim ${i} is ${show(d)}`,
      )
    }
    if (d > 0) size *= d
  }
  // Zeros aside, the dims must multiply to an exact number: onnxruntime multiplies them in order
  // (and overflows at 2^63), onnxruntime-node's Tensor in doubles (Infinity * 0 is NaN).
  if (size > Number.MAX_SAFE_INTEGER) {
    throw new InvalidShapeError(
      `${where}: shape [${shape.join(', ')}] is too large: its dims other than 0 multiply to more than 2^53 - 1`,
    )
  }
  return shape as number[]
}

/**
 * Shape of a nested array, following first elements, never deeper than the declared rank (a
 * declared scalar takes `[x]`) or MAX_UNKNOWN_RANK: every later walk of the data recurses once per
 * dim, so this bound is what keeps a deeply nested request from overflowing the stack. Where an
 * empty array stops the descent before the declared rank, the remaining fixed dims come from the
 * spec (`[]` for `[batch, 4]` is [0, 4]).
 */
function inferDims(value: unknown[], declared: readonly Dim[] | null, where: string): number[] {
  const maxDepth = declared === null ? MAX_UNKNOWN_RANK : Math.max(declared.length, 1)
  const dims: number[] = []
  let node: unknown = value
  while (Array.isArray(node)) {
    if (dims.length === maxDepth) {
      const most =
        declared === null
          ? 'the most modelgate reads'
          : `the model takes rank ${declared.length} ${formatDims(declared)}`
      throw new InvalidShapeError(
        `${where}: arrays nested more than ${maxDepth} levels deep; ${most}`,
      )
    }
    dims.push(node.length)
    if (node.length === 0) break
    node = node[0]
  }
  if (declared && dims.length < declared.length && dims.at(-1) === 0) {
    const rest = declared.slice(dims.length)
    if (rest.every((d) => typeof d === 'number')) dims.push(...(rest as number[]))
  }
  return dims
}

function fillNested(
  value: unknown[],
  dims: number[],
  type: ElementType,
  where: string,
): TensorStorage {
  const count = dims.reduce((a, b) => a * b, 1)
  const data = allocate(type, count)
  if (count > 0) fillLevel(value, 0, dims, data, 0, ELEMENT_READERS[type], where)
  else checkEmptyNesting(value, 0, dims, where, [])
  return data
}

// The path of an element or row is derived from its flat offset only when reporting an error, so
// the common path allocates nothing per row.
function fillLevel(
  node: unknown[],
  depth: number,
  dims: number[],
  out: TensorStorage,
  offset: number,
  read: ElementReader,
  where: string,
): number {
  const n = dims[depth]!
  if (node.length !== n)
    throw ragged(where, unflatten(offset, dims).slice(0, depth), n, node.length)
  if (depth === dims.length - 1) {
    for (let i = 0; i < n; i++) {
      const v = node[i]
      if (Array.isArray(v)) throw raggedDepth(where, unflatten(offset + i, dims), dims.length)
      try {
        ;(out as unknown as Record<number, unknown>)[offset + i] = read(v)
      } catch (e) {
        throw elementError(e, where, unflatten(offset + i, dims))
      }
    }
    return offset + n
  }
  for (let i = 0; i < n; i++) {
    const child = node[i]
    // `offset` is where child i starts: each call returns the offset after its subtree.
    if (!Array.isArray(child))
      throw raggedDepth(where, unflatten(offset, dims).slice(0, depth + 1), dims.length)
    offset = fillLevel(child, depth + 1, dims, out, offset, read, where)
  }
  return offset
}

/** An empty tensor still has to be a well-formed (non-ragged) nesting. */
function checkEmptyNesting(
  node: unknown,
  depth: number,
  dims: number[],
  where: string,
  path: number[],
): void {
  if (depth === dims.length || !Array.isArray(node)) return
  if (node.length !== dims[depth]) throw ragged(where, path, dims[depth]!, node.length)
  node.forEach((child, i) => {
    if (!Array.isArray(child) && depth + 1 < dims.length)
      throw raggedDepth(where, [...path, i], dims.length)
    checkEmptyNesting(child, depth + 1, dims, where, [...path, i])
  })
}

function writeElement(
  out: TensorStorage,
  index: number,
  value: unknown,
  read: ElementReader,
  where: string,
  dims: number[],
): void {
  try {
    ;(out as unknown as Record<number, unknown>)[index] = read(value)
  } catch (e) {
    throw elementError(e, where, unflatten(index, dims))
  }
}

function unflatten(index: number, dims: number[]): number[] {
  const path: number[] = []
  for (let d = dims.length - 1; d >= 0; d--) {
    path.unshift(index % dims[d]!)
    index = Math.floor(index / dims[d]!)
  }
  return path
}

function at(path: number[]): string {
  return path.map((i) => `[${i}]`).join('')
}

function elementError(e: unknown, where: string, path: number[]): Error {
  if (!(e instanceof ElementError)) return e as Error
  const message = `${where}${at(path)}: ${e.message}`
  return e.kind === 'type' ? new InvalidTypeError(message) : new InvalidValueError(message)
}

function ragged(where: string, path: number[], expected: number, got: number): InvalidShapeError {
  return new InvalidShapeError(
    `${where}${at(path)}: ragged array, expected ${expected} elements like its siblings, got ${got}`,
  )
}

function raggedDepth(where: string, path: number[], rank: number): InvalidShapeError {
  return new InvalidShapeError(
    `${where}${at(path)}: ragged array, every element must be nested ${rank} levels deep`,
  )
}

/** Rank and every fixed dim, against the spec; `[1]` is taken for a declared scalar. */
export function checkShape(dims: readonly number[], spec: TensorSpec, where: string): void {
  const declared = spec.shape
  if (declared === null) return
  // Clients often send [x] for a scalar: it is taken, and fed as the scalar (fedDims).
  if (declared.length === 0 && dims.length === 1 && dims[0] === 1) return
  if (dims.length !== declared.length) {
    throw new InvalidShapeError(
      `${where}: expected rank ${declared.length} ${formatDims(declared)}, got shape [${dims.join(', ')}]`,
    )
  }
  for (let i = 0; i < dims.length; i++) {
    const d = declared[i]
    if (typeof d === 'number' && d !== dims[i]) {
      throw new InvalidShapeError(
        `${where}: dim ${i} must be ${d} ${formatDims(declared)}, got shape [${dims.join(', ')}]`,
      )
    }
  }
}

function formatDims(dims: readonly Dim[]): string {
  return `[${dims.map((d) => (d === null ? '?' : typeof d === 'string' ? d : String(d))).join(', ')}]`
}
