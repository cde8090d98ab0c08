import fc from 'fast-check'
import { Tensor } from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { allocate, ELEMENT_TYPES, type ElementType } from '../../src/runtime/element-type.js'
import { toFloat16Bits } from '../../src/runtime/float16.js'
import { encodeTensor } from '../../src/runtime/tensor-encode.js'
import { encodedSize, type OutputLayout } from '../../src/runtime/tensor-size.js'
import { encodeBinaryTensor } from '../../src/v2/binary.js'

/** Real onnxruntime tensors, encoded by the real encoders: the estimate is never below what they write. */
const tensor = (type: ElementType, data: ArrayLike<unknown>, dims: readonly number[]) =>
  new Tensor(type, data as never, dims)

/** The longest values of each type as JSON text. */
const WORST: Readonly<Record<ElementType, readonly unknown[]>> = {
  float32: [
    -1.1754943508222875e-38,
    -1.401298464324817e-45,
    -0.0000012345678901234567,
    -3.4028234663852886e38,
    NaN,
    -Infinity,
  ],
  float64: [
    -2.2250738585072014e-308,
    -0.0000012345678901234567,
    -1.7976931348623157e308,
    -Infinity,
  ],
  float16: [-(2 ** -24), -6.097555160522461e-5, -65504, NaN],
  int8: [-128],
  int16: [-32768],
  int32: [-2147483648],
  int64: [-(2n ** 63n), -(2n ** 53n) + 1n],
  uint8: [255],
  uint16: [65535],
  uint32: [4294967295],
  uint64: [2n ** 64n - 1n],
  bool: [false],
  string: ['', 'quote " and \\ backslash', 'héllo 日本語 🎉'],
}

function storage(type: ElementType, values: readonly unknown[], n: number): ArrayLike<unknown> {
  const data = allocate(type, n) as unknown as Record<number, unknown>
  for (let i = 0; i < n; i++) {
    const v = values[i % values.length]
    // float16 and bool travel as their bit patterns and bytes (Uint16Array, Uint8Array).
    data[i] = type === 'float16' ? toFloat16Bits(v as number) : type === 'bool' ? (v ? 1 : 0) : v
  }
  return data as unknown as ArrayLike<unknown>
}

/** What each layout really writes for `t` (the JSON as UTF-8 bytes). */
function written(t: Tensor, layout: OutputLayout): number {
  const type = t.type as ElementType
  if (layout === 'binary') return encodeBinaryTensor(t.data as never, type).length
  return Buffer.byteLength(
    JSON.stringify(encodeTensor(t, layout === 'nested' ? 'nested' : 'typed')),
  )
}

const LAYOUTS: readonly OutputLayout[] = ['nested', 'flat', 'binary']
const SHAPES: readonly number[][] = [
  [],
  [1],
  [7],
  [0],
  [2, 3],
  [3, 0],
  [0, 3],
  [2, 0, 4],
  [2, 3, 1, 2],
]

describe('encodedSize', () => {
  it.each(ELEMENT_TYPES)(
    '%s: never below what the encoders write, for the longest values and every shape',
    (type) => {
      for (const dims of SHAPES) {
        const n = dims.reduce((a, b) => a * b, 1)
        const t = tensor(type, storage(type, WORST[type], n), dims)
        for (const layout of LAYOUTS)
          expect(encodedSize(t, layout), `${layout} [${dims}]`).toBeGreaterThanOrEqual(
            written(t, layout),
          )
      }
    },
  )

  it('never below what the encoders write, for any float32, float64 or int64 values (property)', () => {
    const cases = [
      fc
        .array(fc.float(), { maxLength: 40 })
        .map((v) => tensor('float32', Float32Array.from(v), [v.length])),
      fc
        .array(fc.double(), { maxLength: 40 })
        .map((v) => tensor('float64', Float64Array.from(v), [v.length])),
      fc
        .array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 40 })
        .map((v) => tensor('int64', BigInt64Array.from(v), [v.length])),
    ]
    for (const arbitrary of cases) {
      fc.assert(
        fc.property(arbitrary, (t) => {
          for (const layout of LAYOUTS)
            expect(encodedSize(t, layout)).toBeGreaterThanOrEqual(written(t, layout))
        }),
      )
    }
  })

  it('counts the arrays of an empty tensor, from its dims alone: nested [1e8, 0] is 300 MB, flat or binary nothing', () => {
    const t = tensor('float32', new Float32Array(0), [100_000_000, 0])
    expect(encodedSize(t, 'nested')).toBeGreaterThanOrEqual(3 * 100_000_000)
    expect(encodedSize(t, 'flat')).toBeLessThan(200)
    expect(encodedSize(t, 'binary')).toBeLessThan(200)
  })

  it('is Infinity when the arrays or elements cannot even be counted exactly', () => {
    const t = tensor('float32', new Float32Array(0), [2 ** 31, 2 ** 31, 2 ** 31, 0])
    expect(encodedSize(t, 'nested')).toBe(Infinity)
  })

  it('sums string lengths only until the budget is passed', () => {
    const t = tensor('string', ['a'.repeat(1000), 'b'.repeat(1000), 'c'.repeat(1000)], [3])
    expect(encodedSize(t, 'flat')).toBeGreaterThanOrEqual(3000)
    const partial = encodedSize(t, 'flat', 500)
    expect(partial).toBeGreaterThan(500)
    expect(partial).toBeLessThan(2000)
  })
})
