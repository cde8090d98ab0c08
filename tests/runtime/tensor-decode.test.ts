import type { Tensor } from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { ServerError } from '../../src/errors.js'
import type { ElementType } from '../../src/runtime/element-type.js'
import type { Dim, TensorSpec } from '../../src/runtime/signature.js'
import { decodeTensor } from '../../src/runtime/tensor-decode.js'

const spec = (type: ElementType, shape: readonly Dim[] | null = ['n'], name = 'x'): TensorSpec => ({
  name,
  type,
  shape,
})

/** The decoded tensor as plain data: dims, type and the flat elements as a plain array. */
function decode(
  value: unknown,
  s: TensorSpec,
): { type: string; dims: readonly number[]; data: unknown[] } {
  const t: Tensor = decodeTensor(value, s)
  return { type: t.type, dims: t.dims, data: Array.from(t.data as ArrayLike<unknown>) }
}

/** Runs `fn`, which must throw the ServerError with `code`; returns its message. */
function errorOf(fn: () => unknown, code: string): string {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ServerError)
    expect((e as ServerError).code, (e as Error).message).toBe(code)
    return (e as Error).message
  }
  throw new Error(`expected a ServerError with code ${code}, nothing was thrown`)
}

describe('decodeTensor: nested arrays of every element type', () => {
  const cases: [ElementType, unknown[], unknown[], new (n: number) => unknown][] = [
    ['float32', [1.5, -2, 0.1], [1.5, -2, Math.fround(0.1)], Float32Array],
    ['float64', [0.1, -1e300, 5e-324], [0.1, -1e300, 5e-324], Float64Array],
    [
      'float16',
      [1, 0.5, -2, 65504, 2 ** -24],
      [0x3c00, 0x3800, 0xc000, 0x7bff, 0x0001],
      Uint16Array,
    ],
    ['int8', [-128, 0, 127], [-128, 0, 127], Int8Array],
    ['int16', [-32768, 32767], [-32768, 32767], Int16Array],
    ['int32', [-2147483648, 2147483647], [-2147483648, 2147483647], Int32Array],
    ['uint8', [0, 255], [0, 255], Uint8Array],
    ['uint16', [0, 65535], [0, 65535], Uint16Array],
    ['uint32', [0, 4294967295], [0, 4294967295], Uint32Array],
    ['int64', [-1, 0, 9007199254740991], [-1n, 0n, 9007199254740991n], BigInt64Array],
    ['uint64', [0, 42], [0n, 42n], BigUint64Array],
    ['bool', [true, false, 1, 0], [1, 0, 1, 0], Uint8Array],
    ['string', ['a', '', 'é 漢字 🙂'], ['a', '', 'é 漢字 🙂'], Array],
  ]
  it.each(cases)('%s', (type, input, stored, storage) => {
    const t = decodeTensor(input, spec(type))
    expect(t.type).toBe(type)
    expect(t.dims).toEqual([input.length])
    expect(t.data).toBeInstanceOf(storage)
    expect(Array.from(t.data as ArrayLike<unknown>)).toEqual(stored)
  })
})

describe('decodeTensor: shape inference', () => {
  it('infers every dim from the nesting and lays the data out row-major', () => {
    const value = [
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      [
        [7, 8, 9],
        [10, 11, 12],
      ],
    ]
    expect(decode(value, spec('int32', ['a', 'b', 'c']))).toEqual({
      type: 'int32',
      dims: [2, 2, 3],
      data: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    })
    expect(decode([[[[[[7]]]]]], spec('int32', null)).dims).toEqual([1, 1, 1, 1, 1, 1])
  })

  it.each([
    ['a short row', [[1, 2], [3]], "x'[1]"],
    [
      'a long row',
      [
        [1, 2],
        [3, 4, 5],
      ],
      "x'[1]",
    ],
    ['a number where a row should be', [[1, 2], 3], "x'[1]"],
    [
      'a row where a number should be',
      [
        [1, [2]],
        [3, 4],
      ],
      "x'[0][1]",
    ],
    [
      'a ragged row deep inside',
      [
        [
          [1, 2],
          [3, 4],
        ],
        [[5, 6], [7]],
      ],
      "x'[1][1]",
    ],
    ['a ragged row after an empty one', [[], [1]], "x'[1]"],
    ['an empty row beside a non-empty one, deeper', [[[]], []], "x'[1]"],
    ['a number beside an empty row', [[], 5], "x'[1]"],
  ])('refuses a ragged array: %s, naming where', (_, value, where) => {
    const message = errorOf(() => decodeTensor(value, spec('float32', null)), 'invalid_shape')
    expect(message).toContain(where)
    expect(message).toMatch(/ragged/)
  })
})

describe('decodeTensor: typed objects', () => {
  it('takes flat data with a shape, or with `dims`, or nested data', () => {
    const want = { type: 'float32', dims: [2, 2], data: [1, 2, 3, 4] }
    expect(
      decode({ type: 'float32', shape: [2, 2], data: [1, 2, 3, 4] }, spec('float32', ['b', 2])),
    ).toEqual(want)
    expect(
      decode({ type: 'float32', dims: [2, 2], data: [1, 2, 3, 4] }, spec('float32', ['b', 2])),
    ).toEqual(want)
    expect(
      decode(
        {
          type: 'float32',
          shape: [2, 2],
          data: [
            [1, 2],
            [3, 4],
          ],
        },
        spec('float32', ['b', 2]),
      ),
    ).toEqual(want)
    expect(
      decode(
        {
          data: [
            [1, 2],
            [3, 4],
          ],
        },
        spec('float32', ['b', 2]),
      ),
    ).toEqual(want)
  })

  it('refuses nested data that is ragged even when its element count fits the shape', () => {
    errorOf(
      () =>
        decodeTensor(
          { type: 'float32', shape: [2, 2], data: [[1, 2, 3], [4]] },
          spec('float32', ['b', 2]),
        ),
      'invalid_shape',
    )
    errorOf(
      () =>
        decodeTensor(
          { type: 'float32', shape: [2, 2], data: [[1, 2], 3, 4] },
          spec('float32', ['b', 2]),
        ),
      'invalid_shape',
    )
  })

  it("refuses a type name that is not the model's, or not a type at all", () => {
    expect(
      errorOf(
        () => decodeTensor({ type: 'float64', shape: [1], data: [1] }, spec('float32')),
        'invalid_type',
      ),
    ).toMatch(/float32.*float64/)
    errorOf(
      () => decodeTensor({ type: 'FP32', shape: [1], data: [1] }, spec('float32')),
      'invalid_type',
    )
    errorOf(() => decodeTensor({ type: 7, shape: [1], data: [1] }, spec('float32')), 'invalid_type')
  })

  it('refuses data whose length is not the product of the shape', () => {
    const message = errorOf(
      () => decodeTensor({ type: 'int32', shape: [2, 2], data: [1, 2, 3] }, spec('int32', null)),
      'invalid_shape',
    )
    expect(message).toMatch(/4 elements.*3/)
    errorOf(
      () => decodeTensor({ type: 'int32', shape: [0], data: [1] }, spec('int32', null)),
      'invalid_shape',
    )
    errorOf(
      () => decodeTensor({ type: 'int32', shape: [], data: [] }, spec('int32', null)),
      'invalid_shape',
    )
  })

  it('refuses a malformed shape, missing data and unknown keys', () => {
    errorOf(() => decodeTensor({ shape: [-1], data: [] }, spec('int32', null)), 'invalid_shape')
    errorOf(() => decodeTensor({ shape: [1.5], data: [1] }, spec('int32', null)), 'invalid_shape')
    errorOf(() => decodeTensor({ shape: '2', data: [1, 2] }, spec('int32', null)), 'invalid_shape')
    errorOf(() => decodeTensor({ shape: [1] }, spec('int32', null)), 'invalid_type')
    errorOf(() => decodeTensor({ shape: [1], data: 5 }, spec('int32', null)), 'invalid_type')
    expect(
      errorOf(
        () => decodeTensor({ shape: [1], data: [1], dtype: 'int32' }, spec('int32', null)),
        'invalid_type',
      ),
    ).toContain('dtype')
  })

  it('checks a typed shape against the spec like an inferred one', () => {
    errorOf(
      () =>
        decodeTensor(
          { type: 'float32', shape: [1, 3], data: [1, 2, 3] },
          spec('float32', ['b', 4]),
        ),
      'invalid_shape',
    )
    errorOf(
      () =>
        decodeTensor(
          { type: 'float32', shape: [4], data: [1, 2, 3, 4] },
          spec('float32', ['b', 4]),
        ),
      'invalid_shape',
    )
  })
})

describe('decodeTensor: int64 and uint64', () => {
  it('takes numbers and decimal strings, exactly, beyond 2^53', () => {
    expect(decode([1, '-2', '9007199254740993', '-9007199254740993'], spec('int64')).data).toEqual([
      1n,
      -2n,
      9007199254740993n,
      -9007199254740993n,
    ])
    expect(decode(['18446744073709551615', '9007199254740993', 0], spec('uint64')).data).toEqual([
      18446744073709551615n,
      9007199254740993n,
      0n,
    ])
  })

  it('takes the limits of each type and refuses one past them as invalid_value', () => {
    expect(decode(['-9223372036854775808', '9223372036854775807'], spec('int64')).data).toEqual([
      -(2n ** 63n),
      2n ** 63n - 1n,
    ])
    errorOf(() => decodeTensor(['9223372036854775808'], spec('int64')), 'invalid_value')
    errorOf(() => decodeTensor(['-9223372036854775809'], spec('int64')), 'invalid_value')
    errorOf(() => decodeTensor([1e19], spec('int64')), 'invalid_value')
    errorOf(() => decodeTensor(['18446744073709551616'], spec('uint64')), 'invalid_value')
    errorOf(() => decodeTensor(['-1'], spec('uint64')), 'invalid_value')
    errorOf(() => decodeTensor([-1], spec('uint64')), 'invalid_value')
  })

  it('calls a decimal string of any length that is out of range invalid_value, not invalid_type', () => {
    // errors.ts: a value of the right kind outside what the type holds is invalid_value.
    errorOf(() => decodeTensor(['100000000000000000000'], spec('uint64')), 'invalid_value')
    errorOf(() => decodeTensor(['-100000000000000000000'], spec('int64')), 'invalid_value')
  })

  it('refuses a JSON number beyond 2^53, which JSON.parse has already rounded, pointing at decimal strings', () => {
    // 9007199254740993 parses to 9007199254740992: serving it would silently change the value.
    const message = errorOf(
      () => decodeTensor([JSON.parse('9007199254740993')], spec('int64')),
      'invalid_value',
    )
    expect(message).toMatch(/decimal string/)
    errorOf(() => decodeTensor([2 ** 60], spec('uint64')), 'invalid_value')
    expect(decode([Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER], spec('int64')).data).toEqual(
      [2n ** 53n - 1n, -(2n ** 53n - 1n)],
    )
  })

  it('refuses fractions as invalid_value and non-integers as invalid_type', () => {
    errorOf(() => decodeTensor([1.5], spec('int64')), 'invalid_value')
    for (const bad of ['1.5', '1e3', 'abc', '', ' 1', '0x10', true, null])
      errorOf(() => decodeTensor([bad], spec('int64')), 'invalid_type')
  })
})

describe('decodeTensor: floats', () => {
  it('takes "NaN", "Infinity" and "-Infinity" for every float type', () => {
    const nonFinite = ['NaN', 'Infinity', '-Infinity']
    expect(decode(nonFinite, spec('float32')).data).toEqual([NaN, Infinity, -Infinity])
    expect(decode(nonFinite, spec('float64')).data).toEqual([NaN, Infinity, -Infinity])
    expect(decode(nonFinite, spec('float16')).data).toEqual([0x7e00, 0x7c00, 0xfc00])
    expect(decode({ type: 'float32', shape: [], data: ['NaN'] }, spec('float32', [])).data).toEqual(
      [NaN],
    )
  })

  it.each(['1.5', 'nan', 'inf', '+Infinity', '', true, null, {}])(
    'refuses %j as a float32 with invalid_type',
    (bad) => {
      expect(
        errorOf(() => decodeTensor([[0, bad]], spec('float32', null)), 'invalid_type'),
      ).toContain("x'[0][1]")
    },
  )
})

describe('decodeTensor: small integers, bool and string', () => {
  it.each([
    ['uint8', 300],
    ['uint8', -1],
    ['int8', 128],
    ['int16', -32769],
    ['int32', 2 ** 31],
    ['int32', 1.5],
    ['uint16', 65536],
    ['uint32', 2 ** 32],
  ] as [ElementType, number][])(
    'refuses %s %d as invalid_value, naming the element',
    (type, value) => {
      const message = errorOf(
        () =>
          decodeTensor(
            [
              [1, 2],
              [3, value],
            ],
            spec(type, null),
          ),
        'invalid_value',
      )
      expect(message).toContain("input 'x'[1][1]")
      expect(message).toContain(String(value))
    },
  )

  it('refuses wrong JSON types with invalid_type', () => {
    errorOf(() => decodeTensor(['1'], spec('int32')), 'invalid_type')
    errorOf(() => decodeTensor([true], spec('uint8')), 'invalid_type')
    errorOf(() => decodeTensor(['true'], spec('bool')), 'invalid_type')
    errorOf(() => decodeTensor([2], spec('bool')), 'invalid_type')
    errorOf(() => decodeTensor([1], spec('string')), 'invalid_type')
    errorOf(() => decodeTensor([null], spec('string')), 'invalid_type')
  })
})

describe('decodeTensor: scalars', () => {
  it('takes a bare value for a declared scalar', () => {
    expect(decode(2.5, spec('float32', []))).toEqual({ type: 'float32', dims: [], data: [2.5] })
    expect(decode('hi', spec('string', []))).toEqual({ type: 'string', dims: [], data: ['hi'] })
    expect(decode('12345678901234567890', spec('uint64', []))).toEqual({
      type: 'uint64',
      dims: [],
      data: [12345678901234567890n],
    })
    expect(decode(false, spec('bool', []))).toEqual({ type: 'bool', dims: [], data: [0] })
    expect(decode({ type: 'int32', shape: [], data: [7] }, spec('int32', []))).toEqual({
      type: 'int32',
      dims: [],
      data: [7],
    })
  })

  it('takes [x] for a declared scalar, but nothing bigger, and feeds it as the scalar (a kernel may refuse [1]; found by tests/fuzz)', () => {
    expect(decode([2.5], spec('float32', []))).toEqual({ type: 'float32', dims: [], data: [2.5] })
    expect(decode({ type: 'float32', shape: [1], data: [2.5] }, spec('float32', []))).toEqual({
      type: 'float32',
      dims: [],
      data: [2.5],
    })
    errorOf(() => decodeTensor([1, 2], spec('float32', [])), 'invalid_shape')
    errorOf(() => decodeTensor([[1]], spec('float32', [])), 'invalid_shape')
    errorOf(() => decodeTensor([], spec('float32', [])), 'invalid_shape')
  })

  it('refuses a bare value where a tensor of rank 1 or more is declared', () => {
    errorOf(() => decodeTensor(2.5, spec('float32', ['n'])), 'invalid_shape')
    errorOf(() => decodeTensor(2.5, spec('float32', [1])), 'invalid_shape')
  })

  it('refuses a bare value of the wrong kind, and nothing at all', () => {
    errorOf(() => decodeTensor('2.5', spec('float32', [])), 'invalid_type')
    errorOf(() => decodeTensor(null, spec('float32', [])), 'invalid_type')
    errorOf(() => decodeTensor(undefined, spec('float32', [])), 'invalid_type')
    errorOf(() => decodeTensor(256, spec('uint8', [])), 'invalid_value')
  })
})

describe('decodeTensor: checking shapes against the spec', () => {
  it('accepts any rank when the rank is unknown', () => {
    expect(decode(3, spec('float32', null)).dims).toEqual([])
    expect(decode([1, 2], spec('float32', null)).dims).toEqual([2])
    expect(decode([[[[[1]]], [[[2]]]]], spec('float32', null)).dims).toEqual([1, 2, 1, 1, 1])
  })

  it('refuses a fixed dim of the wrong size or the wrong rank, saying what was expected', () => {
    expect(
      errorOf(() => decodeTensor([[1, 2, 3]], spec('float32', [2, 3])), 'invalid_shape'),
    ).toMatch(/dim 0 must be 2/)
    expect(
      errorOf(() => decodeTensor([[1, 2]], spec('float32', ['batch', 3])), 'invalid_shape'),
    ).toMatch(/\[batch, 3\]/)
    expect(
      errorOf(() => decodeTensor([1, 2, 3], spec('float32', ['batch', 3])), 'invalid_shape'),
    ).toMatch(/rank 2/)
    errorOf(() => decodeTensor([[[1, 2, 3]]], spec('float32', ['batch', 3])), 'invalid_shape')
  })

  it('accepts any size for symbolic and unnamed dims', () => {
    expect(decode([[1, 2, 3]], spec('float32', ['batch', 3])).dims).toEqual([1, 3])
    expect(
      decode(
        [
          [1, 2, 3],
          [4, 5, 6],
          [7, 8, 9],
        ],
        spec('float32', ['batch', 3]),
      ).dims,
    ).toEqual([3, 3])
    expect(decode([[1], [2]], spec('float32', [null, null])).dims).toEqual([2, 1])
    expect(decode([[1, 2, 3, 4, 5]], spec('float32', [null, null])).dims).toEqual([1, 5])
  })
})

describe('decodeTensor: empty tensors', () => {
  it('fills the fixed trailing dims of the spec for []', () => {
    expect(decode([], spec('float32', ['batch', 4]))).toEqual({
      type: 'float32',
      dims: [0, 4],
      data: [],
    })
    expect(decode([], spec('float32', [null, 2, 3]))).toEqual({
      type: 'float32',
      dims: [0, 2, 3],
      data: [],
    })
    expect(decode([], spec('string', ['n']))).toEqual({ type: 'string', dims: [0], data: [] })
    expect(decode([], spec('int64', null))).toEqual({ type: 'int64', dims: [0], data: [] })
  })

  it('keeps an explicit zero dim inside the nesting', () => {
    expect(decode([[], []], spec('float32', ['batch', null]))).toEqual({
      type: 'float32',
      dims: [2, 0],
      data: [],
    })
    expect(decode([[], []], spec('float32', [2, 0]))).toEqual({
      type: 'float32',
      dims: [2, 0],
      data: [],
    })
    errorOf(() => decodeTensor([[], []], spec('float32', ['batch', 4])), 'invalid_shape')
    errorOf(() => decodeTensor([], spec('float32', [3, 4])), 'invalid_shape')
  })

  it('takes typed empty tensors of any shape', () => {
    expect(
      decode({ type: 'float32', shape: [0, 4], data: [] }, spec('float32', ['batch', 4])).dims,
    ).toEqual([0, 4])
    expect(decode({ type: 'int64', shape: [3, 0, 5], data: [] }, spec('int64', null)).dims).toEqual(
      [3, 0, 5],
    )
  })
})

/** `inner` wrapped in `depth` arrays, built without recursion (JSON.stringify would overflow). */
function nestedDeep(depth: number, inner: unknown): unknown[] {
  let node: unknown = inner
  for (let i = 0; i < depth; i++) node = [node]
  return node as unknown[]
}

describe('decodeTensor: bounds on dims and nesting', () => {
  it('takes any dim up to 2^31 - 1 in a zero-element tensor, and refuses one beyond, naming the input and the dim', () => {
    expect(decode({ shape: [2 ** 31 - 1, 0], data: [] }, spec('float32', ['a', 'b'])).dims).toEqual(
      [2 ** 31 - 1, 0],
    )
    for (const [shape, dim] of [
      [[2 ** 31, 0], 0],
      [[0, 1e15], 1],
      [[0, 0, 2 ** 53 + 2], 2],
      [[1e21, 0], 0],
    ] as const) {
      const message = errorOf(
        () => decodeTensor({ shape, data: [] }, spec('float32', null)),
        'invalid_shape',
      )
      expect(message).toContain("input 'x'")
      expect(message).toContain(`dim ${dim}`)
      expect(message).toContain('2147483647')
    }
    // The exact V2 parser hands a dim beyond 2^53 over as a BigInt.
    expect(
      errorOf(
        () => decodeTensor({ shape: [0, 2n ** 70n], data: [] }, spec('float32', null)),
        'invalid_shape',
      ),
    ).toContain('dim 1')
  })

  it('refuses dims whose product (zeros aside) is beyond 2^53 - 1, which onnxruntime would overflow on', () => {
    const big = 2 ** 31 - 1
    expect(decode({ shape: [big, 0, 2 ** 20], data: [] }, spec('float32', null)).dims).toEqual([
      big,
      0,
      2 ** 20,
    ])
    for (const shape of [
      [big, big, big, 0],
      [0, big, 2 ** 23],
    ]) {
      const message = errorOf(
        () => decodeTensor({ shape, data: [] }, spec('float32', null)),
        'invalid_shape',
      )
      expect(message).toMatch(/multiply to more than 2\^53 - 1/)
    }
  })

  it('takes up to rank 64 for an input declared without a shape', () => {
    expect(
      decode({ shape: new Array(64).fill(1), data: [1] }, spec('float32', null)).dims,
    ).toHaveLength(64)
    expect(decode(nestedDeep(64, 1), spec('float32', null)).dims).toHaveLength(64)
    expect(
      errorOf(
        () => decodeTensor({ shape: new Array(65).fill(1), data: [1] }, spec('float32', null)),
        'invalid_shape',
      ),
    ).toMatch(/rank 65/)
    expect(
      errorOf(() => decodeTensor(nestedDeep(65, 1), spec('float32', null)), 'invalid_shape'),
    ).toMatch(/nested more than 64 levels/)
  })

  it('never walks nesting deeper than the declared rank: 100,000 levels are refused at once, never a stack overflow', () => {
    for (const inner of [1, [], 'x']) {
      const deep = nestedDeep(100_000, inner)
      expect(
        errorOf(() => decodeTensor(deep, spec('float32', ['batch', 4])), 'invalid_shape'),
      ).toMatch(/nested more than 2 levels deep; the model takes rank 2 \[batch, 4\]/)
      expect(errorOf(() => decodeTensor(deep, spec('float32', null)), 'invalid_shape')).toMatch(
        /nested more than 64 levels/,
      )
      expect(
        errorOf(
          () => decodeTensor({ shape: [1, 4], data: deep }, spec('float32', ['batch', 4])),
          'invalid_shape',
        ),
      ).toMatch(/nested more than 64 levels/)
      expect(
        errorOf(() => decodeTensor({ data: deep }, spec('float32', [])), 'invalid_shape'),
      ).toMatch(/nested more than 1 levels/)
    }
  })

  it('names a deeply nested value where a message would quote it, without writing it out', () => {
    let deepObject: unknown = 1
    for (let i = 0; i < 100_000; i++) deepObject = { a: deepObject }
    expect(
      errorOf(
        () => decodeTensor({ shape: [2], data: [deepObject, 1] }, spec('float32')),
        'invalid_type',
      ),
    ).toContain('an object nested too deep to show')
    expect(
      errorOf(
        () => decodeTensor({ type: nestedDeep(100_000, 1), data: [1] }, spec('float32')),
        'invalid_type',
      ),
    ).toContain('an array nested too deep to show')
    expect(
      errorOf(
        () => decodeTensor({ shape: deepObject, data: [1] }, spec('float32')),
        'invalid_shape',
      ),
    ).toContain('too deep to show')
  })
})
