import { Tensor } from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import type { ElementType } from '../../src/runtime/element-type.js'
import { decodeTensor } from '../../src/runtime/tensor-decode.js'
import { encodeTensor } from '../../src/runtime/tensor-encode.js'

/** Real onnxruntime tensors in, JSON out: nothing here is mocked. */
const tensor = (type: ElementType, data: ArrayLike<unknown>, dims: number[]) =>
  new Tensor(type, data as never, dims)

describe('encodeTensor: nested and typed layouts', () => {
  it('nests by dims, row-major, and gives flat data with the shape when typed', () => {
    const t = tensor('float32', Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3])
    expect(encodeTensor(t, 'nested')).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ])
    expect(encodeTensor(t, 'typed')).toEqual({
      type: 'float32',
      shape: [2, 3],
      data: [1, 2, 3, 4, 5, 6],
    })
    const r3 = tensor(
      'int32',
      Int32Array.from({ length: 12 }, (_, i) => i),
      [2, 3, 2],
    )
    expect(encodeTensor(r3, 'nested')).toEqual([
      [
        [0, 1],
        [2, 3],
        [4, 5],
      ],
      [
        [6, 7],
        [8, 9],
        [10, 11],
      ],
    ])
    expect(encodeTensor(tensor('int8', Int8Array.of(-1, 2), [2]), 'nested')).toEqual([-1, 2])
  })

  it('nests rank 6 and keeps dims of size one', () => {
    const t = tensor('uint16', Uint16Array.of(1, 2), [1, 2, 1, 1, 1, 1])
    expect(encodeTensor(t, 'nested')).toEqual([[[[[[1]]]], [[[[2]]]]]])
  })

  it('gives a bare value for a scalar, and shape [] when typed', () => {
    const t = tensor('float64', Float64Array.of(0.1), [])
    expect(encodeTensor(t, 'nested')).toBe(0.1)
    expect(encodeTensor(t, 'typed')).toEqual({ type: 'float64', shape: [], data: [0.1] })
    expect(encodeTensor(tensor('string', ['s'], []), 'nested')).toBe('s')
    expect(encodeTensor(tensor('bool', Uint8Array.of(1), []), 'nested')).toBe(true)
    expect(encodeTensor(tensor('int64', BigInt64Array.of(2n ** 62n), []), 'nested')).toBe(
      '4611686018427387904',
    )
  })

  it('keeps empty tensors: nested as far as the data goes, the exact shape when typed', () => {
    expect(encodeTensor(tensor('float32', new Float32Array(0), [0]), 'nested')).toEqual([])
    expect(encodeTensor(tensor('float32', new Float32Array(0), [2, 0]), 'nested')).toEqual([[], []])
    expect(encodeTensor(tensor('float32', new Float32Array(0), [0, 3]), 'nested')).toEqual([])
    expect(encodeTensor(tensor('float32', new Float32Array(0), [3, 0, 5]), 'nested')).toEqual([
      [],
      [],
      [],
    ])
    expect(encodeTensor(tensor('float32', new Float32Array(0), [0, 3]), 'typed')).toEqual({
      type: 'float32',
      shape: [0, 3],
      data: [],
    })
    expect(encodeTensor(tensor('string', [], [2, 0]), 'typed')).toEqual({
      type: 'string',
      shape: [2, 0],
      data: [],
    })
  })
})

describe('encodeTensor: empty tensors with huge dims', () => {
  const empty = (dims: number[]) => tensor('float32', new Float32Array(0), dims)

  it('typed keeps any shape of an empty tensor and writes no data, whatever its dims', () => {
    for (const dims of [[2 ** 31 - 1, 0], [0, 2 ** 31 - 1], [100_000_000, 0, 100], [0]]) {
      expect(encodeTensor(empty(dims), 'typed')).toEqual({ type: 'float32', shape: dims, data: [] })
    }
  })

  it('nests nothing below a leading 0, whatever follows it', () => {
    expect(encodeTensor(empty([0, 2 ** 31 - 1]), 'nested')).toEqual([])
    expect(encodeTensor(empty([0, 2 ** 31 - 1, 2 ** 31 - 1]), 'nested')).toEqual([])
  })

  it('nests one empty array per index before the 0 (what the output size limit counts)', () => {
    expect(encodeTensor(empty([1, 0]), 'nested')).toEqual([[]])
    expect(encodeTensor(empty([2, 1, 0, 2 ** 31 - 1]), 'nested')).toEqual([[[]], [[]]])
    const wide = encodeTensor(empty([10_000, 0]), 'nested') as unknown[]
    expect(wide).toHaveLength(10_000)
    expect(wide.every((row) => Array.isArray(row) && row.length === 0)).toBe(true)
  })
})

describe('encodeTensor: element values', () => {
  it('returns int64 and uint64 as numbers up to 2^53 - 1 and as decimal strings beyond', () => {
    const max = 2n ** 53n - 1n
    const t = tensor(
      'int64',
      BigInt64Array.of(0n, max, -max, max + 1n, -max - 1n, 2n ** 63n - 1n, -(2n ** 63n)),
      [7],
    )
    expect(encodeTensor(t, 'nested')).toEqual([
      0,
      9007199254740991,
      -9007199254740991,
      '9007199254740992',
      '-9007199254740992',
      '9223372036854775807',
      '-9223372036854775808',
    ])
    const u = tensor('uint64', BigUint64Array.of(5n, 2n ** 64n - 1n), [2])
    expect(encodeTensor(u, 'typed')).toEqual({
      type: 'uint64',
      shape: [2],
      data: [5, '18446744073709551615'],
    })
  })

  it('turns float16 bit patterns into numbers', () => {
    const t = tensor(
      'float16',
      Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0x0000),
      [7],
    )
    expect(encodeTensor(t, 'nested')).toEqual([1, -2, 65504, 2 ** -24, 2 ** -14, 0.333251953125, 0])
  })

  it('writes non-finite floats as "NaN", "Infinity" and "-Infinity" for every float type', () => {
    const want = ['NaN', 'Infinity', '-Infinity', 1.5]
    expect(
      encodeTensor(
        tensor('float32', Float32Array.of(NaN, Infinity, -Infinity, 1.5), [4]),
        'nested',
      ),
    ).toEqual(want)
    expect(
      encodeTensor(
        tensor('float64', Float64Array.of(NaN, Infinity, -Infinity, 1.5), [4]),
        'nested',
      ),
    ).toEqual(want)
    expect(
      encodeTensor(
        tensor('float16', Uint16Array.of(0x7e00, 0x7c00, 0xfc00, 0x3e00), [4]),
        'nested',
      ),
    ).toEqual(want)
    expect(encodeTensor(tensor('float16', Uint16Array.of(0x7c01, 0xffff), [2]), 'nested')).toEqual([
      'NaN',
      'NaN',
    ])
  })

  it('gives float32 values as the double of the stored single', () => {
    expect(encodeTensor(tensor('float32', Float32Array.of(0.1), [1]), 'nested')).toEqual([
      Math.fround(0.1),
    ])
  })

  it('writes bool as true/false, and strings and small integers as they are', () => {
    expect(encodeTensor(tensor('bool', Uint8Array.of(1, 0, 1), [3]), 'nested')).toEqual([
      true,
      false,
      true,
    ])
    expect(encodeTensor(tensor('string', ['a', '', '漢字'], [3]), 'nested')).toEqual([
      'a',
      '',
      '漢字',
    ])
    expect(encodeTensor(tensor('uint32', Uint32Array.of(4294967295), [1]), 'nested')).toEqual([
      4294967295,
    ])
    expect(encodeTensor(tensor('int16', Int16Array.of(-32768), [1]), 'nested')).toEqual([-32768])
  })

  it('produces plain JSON: no bigint, no typed array, nothing JSON.stringify would change', () => {
    const all: [ElementType, ArrayLike<unknown>][] = [
      ['float32', Float32Array.of(NaN, 1)],
      ['float64', Float64Array.of(-Infinity, 2)],
      ['float16', Uint16Array.of(0x7c00, 0x3c00)],
      ['int8', Int8Array.of(-1, 1)],
      ['int16', Int16Array.of(-1, 1)],
      ['int32', Int32Array.of(-1, 1)],
      ['int64', BigInt64Array.of(-1n, 2n ** 60n)],
      ['uint8', Uint8Array.of(0, 255)],
      ['uint16', Uint16Array.of(0, 65535)],
      ['uint32', Uint32Array.of(0, 1)],
      ['uint64', BigUint64Array.of(0n, 2n ** 60n)],
      ['bool', Uint8Array.of(0, 1)],
      ['string', ['x', 'y']],
    ]
    for (const [type, data] of all) {
      for (const format of ['nested', 'typed'] as const) {
        const json = encodeTensor(tensor(type, data, [1, 2]), format)
        expect(JSON.parse(JSON.stringify(json)), `${type} ${format}`).toEqual(json)
      }
    }
  })
})

describe('decode then encode', () => {
  it.each([
    [
      'float32',
      [
        [1.5, 'NaN'],
        ['Infinity', -0.25],
      ],
    ],
    ['float64', [[0.1, '-Infinity']]],
    ['float16', [[0.5, 65504, 'NaN', 2 ** -24]]],
    [
      'int64',
      [
        ['9223372036854775807', -5],
        [7, '-9007199254740993'],
      ],
    ],
    ['uint64', [['18446744073709551615', 0]]],
    ['bool', [[true], [false]]],
    [
      'string',
      [
        ['a', 'ß'],
        ['', '🙂'],
      ],
    ],
    ['uint8', [[0, 255]]],
  ] as [ElementType, unknown[]][])('%s gives back what was sent', (type, value) => {
    const t = decodeTensor(value, { name: 'x', type, shape: null })
    expect(encodeTensor(t, 'nested')).toEqual(value)
  })
})
