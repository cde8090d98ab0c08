import fc from 'fast-check'
import {
  mostly,
  object,
  optional,
  orWild,
  Raw,
  wildAny,
  wildHuge,
  wildLeaf,
  wildString,
  type Wild,
} from './wild-json.js'

/**
 * Tensors shaped like what an input takes, then wrong in every way the decoder has to notice:
 * the element type, the values, the rank, a fixed dim, ragged rows, a shape that does not hold
 * the data, dims that are huge, negative, fractional or not numbers at all.
 */

export type ElementType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'string'

export interface InputSpec {
  readonly name: string
  readonly type: ElementType
  readonly shape: readonly (number | string | null)[] | null
}

const ELEMENT_TYPES: readonly ElementType[] = [
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
]

export const V2_DATATYPES: Readonly<Record<ElementType, string>> = {
  float32: 'FP32',
  float64: 'FP64',
  float16: 'FP16',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
}

/** Bytes one element takes in the binary extension (BYTES: variable). */
export const ELEMENT_BYTES: Readonly<Record<ElementType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
  string: 0,
}

const INT_RANGES: Partial<Record<ElementType, readonly [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
}

/** A value the element type holds, as the wire writes it. */
export function validElement(type: ElementType): fc.Arbitrary<Wild> {
  const range = INT_RANGES[type]
  if (range)
    return fc.oneof(
      fc.integer({ min: range[0], max: range[1] }),
      fc.constantFrom(range[0], range[1], 0),
    )
  switch (type) {
    case 'float32':
    case 'float16':
    case 'float64':
      return fc.oneof(
        {
          weight: 4,
          arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
        },
        fc.constantFrom<Wild>(
          'NaN',
          'Infinity',
          '-Infinity',
          0,
          -0,
          65504,
          1e-8,
          3.4028234663852886e38,
          1e308,
        ),
      )
    case 'int64':
      return fc.oneof(
        fc.integer({ min: -1000, max: 1000 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((b) => b.toString()),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((b) => new Raw(b.toString())),
      )
    case 'uint64':
      return fc.oneof(
        fc.integer({ min: 0, max: 1000 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((b) => b.toString()),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((b) => new Raw(b.toString())),
      )
    case 'bool':
      return fc.oneof(fc.boolean(), fc.constantFrom(0, 1))
    case 'string':
      return wildString.filter((s) => !s.includes('\u0000'))
    default:
      throw new Error(`no element values for ${type}`)
  }
}

/** Mostly a right value, sometimes anything. */
function element(type: ElementType): fc.Arbitrary<Wild> {
  return fc.oneof({ weight: 12, arbitrary: validElement(type) }, { weight: 1, arbitrary: wildLeaf })
}

/** A dim a request should never get away with. */
const wrongDim: fc.Arbitrary<Wild> = fc.constantFrom<Wild>(
  -1,
  -2147483648,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  1e15,
  1.5,
  1e308,
  '2',
  null,
  true,
  '',
  new Raw('1e400'),
  new Raw('-0'),
  new Raw('18446744073709551617'),
  new Raw('99999999999999999999999'),
)

/** Dims a request can send for an input: right, or wrong in rank, in a fixed dim, or in kind. */
export function dimsFor(spec: InputSpec): fc.Arbitrary<number[]> {
  const small = fc.integer({ min: 0, max: 4 })
  const declared = spec.shape
  const right =
    declared === null
      ? fc.array(small, { maxLength: 5 })
      : fc
          .tuple(...declared.map((d) => (typeof d === 'number' ? fc.constant(d) : small)))
          .map((a) => [...a])
  const anyRank = fc.array(small, { maxLength: 6 })
  return fc.oneof({ weight: 8, arbitrary: right }, { weight: 1, arbitrary: anyRank })
}

export const wildShape: fc.Arbitrary<Wild> = fc.oneof(
  fc.array(
    fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: 0, max: 4 }) },
      { weight: 1, arbitrary: wrongDim },
    ),
    { maxLength: 8 },
  ),
  // A rank past any bound: many dims of 1 (the product stays 1) or of 0.
  fc
    .tuple(fc.constantFrom(64, 65, 1000, 10_000), fc.constantFrom(0, 1))
    .map(([n, d]) => new Raw(`[${Array(n).fill(d).join(',')}]`)),
  wildAny,
)

function count(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}

/** At most this many elements in a generated tensor: the suite is about shapes, not volume. */
const MAX_ELEMENTS = 256

/**
 * Flat data for `dims` (or a few elements more or fewer): right values, and one time in four one
 * element that is anything at all (per tensor, not per element: a large tensor would otherwise
 * nearly always hold one, and never reach the model).
 */
export function flatData(
  type: ElementType,
  dims: readonly number[],
  wrongLength = true,
): fc.Arbitrary<Wild[]> {
  const n = Math.min(count(dims), MAX_ELEMENTS)
  const length = wrongLength
    ? fc.oneof(
        { weight: 5, arbitrary: fc.constant(n) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: n + 3 }) },
      )
    : fc.constant(n)
  const odd = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.tuple(fc.nat(), wildLeaf) },
  )
  return fc
    .tuple(
      length.chain((len) => fc.array(validElement(type), { minLength: len, maxLength: len })),
      odd,
    )
    .map(([data, wrong]) => {
      if (wrong === undefined || data.length === 0) return data
      const copy = [...data]
      copy[wrong[0] % copy.length] = wrong[1]
      return copy
    })
}

/** `flat` as nested arrays of `dims`. */
function nest(flat: readonly Wild[], dims: readonly number[]): Wild {
  if (dims.length === 0) return flat[0] ?? 0
  const [first, ...rest] = dims
  const stride = count(rest)
  return Array.from({ length: first! }, (_, i) =>
    nest(flat.slice(i * stride, (i + 1) * stride), rest),
  )
}

/** Nested arrays of `dims`; four times in nine made ragged, or too deep or too shallow, at one place. */
export function nestedData(type: ElementType, dims: readonly number[]): fc.Arbitrary<Wild> {
  const ok = flatData(type, dims, false).map((flat) => nest(flat, dims))
  if (count(dims) === 0 || dims.length === 0) return ok
  return fc
    .tuple(
      ok,
      fc.nat(),
      fc.constantFrom(
        'as-is',
        'as-is',
        'as-is',
        'as-is',
        'as-is',
        'drop',
        'extra',
        'wrap',
        'flatten',
      ),
    )
    .map(([value, pick, how]) => {
      if (how === 'as-is') return value
      // Walk down to an array at a random depth, then break it.
      let node = value as Wild[]
      for (let depth = pick % dims.length; depth > 0 && Array.isArray(node[0]); depth--)
        node = node[pick % node.length] as Wild[]
      const copy = [...node]
      if (how === 'drop') copy.pop()
      else if (how === 'extra') copy.push(copy[0] ?? 0)
      else if (how === 'wrap') copy[0] = [copy[0] ?? 0]
      else copy[0] = 0
      return replace(value, node, copy)
    })
}

function replace(root: Wild, target: Wild, by: Wild): Wild {
  if (root === target) return by
  if (!Array.isArray(root)) return root
  return root.map((c) => replace(c, target, by))
}

/** A typed tensor object `{type, shape, data}` for `spec`, right or wrong in any of its parts. */
function typedTensor(spec: InputSpec): fc.Arbitrary<Wild> {
  return dimsFor(spec).chain((dims) =>
    object(
      {
        type: optional(
          orWild(mostly(fc.constant(spec.type), fc.constantFrom(...ELEMENT_TYPES), 4), 8),
        ),
        shape: optional(mostly(fc.constant<Wild>(dims), wildShape, 5)),
        data: fc.oneof(
          { weight: 5, arbitrary: flatData(spec.type, dims) },
          { weight: 1, arbitrary: nestedData(spec.type, dims) },
          { weight: 1, arbitrary: wildAny },
        ),
      },
      8,
    ),
  )
}

/**
 * For a 1-D integer input, a long run of 1s (or 0s, -1s): a shape taken from the request by a
 * Reshape, ConstantOfShape or Expand, which makes an answer of rank 65, 1,000 or 10,000.
 */
export function longRun(spec: InputSpec): fc.Arbitrary<{ dims: number[]; data: Raw }> | undefined {
  if (spec.shape === null || spec.shape.length !== 1 || !['int64', 'int32'].includes(spec.type))
    return undefined
  // [-1, 1, 1, ...] reshapes any number of elements; [1, 1, ...] only one.
  return fc
    .tuple(fc.constantFrom(65, 100, 1000, 10_000), fc.constantFrom('-1,1', '1', '1', '0', '-1'))
    .map(([n, v]) => ({
      dims: [n],
      data: new Raw(
        `[${v.startsWith('-1,') ? ['-1', ...Array(n - 1).fill('1')].join(',') : Array(n).fill(v).join(',')}]`,
      ),
    }))
}

/** What a request can send for one input of the simple API: nested arrays, a typed object, a scalar, or anything. */
export function tensorFor(spec: InputSpec): fc.Arbitrary<Wild> {
  const run = longRun(spec)
  return fc.oneof(
    { weight: run ? 2 : 0, arbitrary: run ? run.map((r) => r.data) : fc.constant(null) },
    { weight: 5, arbitrary: dimsFor(spec).chain((dims) => nestedData(spec.type, dims)) },
    { weight: 4, arbitrary: typedTensor(spec) },
    { weight: 1, arbitrary: element(spec.type) },
    { weight: 1, arbitrary: wildHuge },
    { weight: 1, arbitrary: wildAny },
  )
}
