import fc from 'fast-check'

/**
 * JSON documents as a hostile client writes them, as text: what JSON.stringify cannot produce
 * (integer literals past 2^64, `1e400`, `-0`, duplicate and `__proto__` keys, nesting 100,000 deep)
 * and what a JavaScript object literal would swallow (`{"__proto__": ...}` sets a prototype).
 */

/** Text written as it is: a number literal, or a whole pre-built document part. */
export class Raw {
  constructor(readonly text: string) {}
}

/** An object as its entries, in order: duplicate keys and `__proto__` survive. */
export class Obj {
  constructor(readonly entries: readonly (readonly [string, Wild])[]) {}
}

export type Wild = null | boolean | number | string | Raw | Obj | readonly Wild[]

export function toJsonText(value: Wild): string {
  if (value instanceof Raw) return value.text
  if (value instanceof Obj)
    return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${toJsonText(v)}`).join(',')}}`
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(',')}]`
  if (typeof value === 'number' && !Number.isFinite(value)) return 'null'
  return JSON.stringify(value)
}

/** Keys a request schema or a tensor object knows, beside the ones that are trouble for JavaScript. */
const KNOWN_KEYS = [
  'inputs',
  'outputs',
  'output_format',
  'type',
  'datatype',
  'shape',
  'dims',
  'data',
  'name',
  'id',
  'parameters',
  'binary_data_size',
  'binary_data',
  'binary_data_output',
  'version',
  'force',
  'reason',
  'ready',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '',
] as const

const NUMBER_TEXTS = [
  '1e400',
  '-1e400',
  '1E+2',
  '-0',
  '-0.0',
  '0e0',
  '1.0',
  '123456789012345678901234567890',
  '-9223372036854775809',
  '9223372036854775808',
  '18446744073709551616',
  '9007199254740993',
  '2147483648',
  '4294967296',
  '1e-400',
  '0.1e1',
] as const

const STRINGS = [
  'NaN',
  'Infinity',
  '-Infinity',
  'nan',
  'inf',
  '',
  ' ',
  '__proto__',
  'constructor',
  '\u0000',
  'a\u0000b',
  '1',
  '-1',
  '9223372036854775808',
  '-9223372036854775809',
  '18446744073709551616',
  '0x10',
  ' 1',
  '1e3',
  '+5',
  '\ud800',
  '\udfff',
  'e\u0301',
  '𝄞',
  '\u202e',
  'FP32',
  'INT64',
  'BYTES',
  'float32',
  'string',
  'typed',
  'nested',
  '%ff',
  '../..',
] as const

const wildNumber: fc.Arbitrary<Wild> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(
    0,
    1,
    -1,
    0.5,
    1.5,
    255,
    256,
    -129,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 63),
    1e308,
    5e-324,
  ),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((b) => new Raw(b.toString())),
  fc.constantFrom(...NUMBER_TEXTS).map((t) => new Raw(t)),
)

export const wildString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...STRINGS),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
)

export const wildLeaf: fc.Arbitrary<Wild> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  wildNumber,
  wildString,
)

export const wildKey: fc.Arbitrary<string> = fc.oneof(fc.constantFrom(...KNOWN_KEYS), wildString)

/** Text of a document nested `depth` deep, in arrays or in objects. */
function deepText(depth: number, kind: 'array' | 'object', leaf = '0'): Raw {
  return kind === 'array'
    ? new Raw('['.repeat(depth) + leaf + ']'.repeat(depth))
    : new Raw('{"a":'.repeat(depth) + leaf + '}'.repeat(depth))
}

/** Very deep, very long, or both: built as text, cheap to make. */
export const wildHuge: fc.Arbitrary<Wild> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(63, 64, 65, 100, 1000, 10_000, 100_000),
      fc.constantFrom('array' as const, 'object' as const),
    )
    .map(([d, k]) => deepText(d, k)),
  fc
    .tuple(
      fc.constantFrom(1000, 10_000, 100_000),
      fc.constantFrom('0', '1', '"a"', '[]', 'null', '1.5'),
    )
    .map(([n, e]) => new Raw(`[${Array(n).fill(e).join(',')}]`)),
)

/** Any JSON value, small and odd: the shape of nothing in particular. */
export const wildValue: fc.Arbitrary<Wild> = fc.letrec<{ value: Wild }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    wildLeaf,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.array(fc.tuple(wildKey, tie('value')), { maxLength: 4 }).map((e) => new Obj(e)),
  ),
})).value

/** wildValue, and now and then a huge one. */
export const wildAny: fc.Arbitrary<Wild> = fc.oneof(
  { weight: 9, arbitrary: wildValue },
  { weight: 1, arbitrary: wildHuge },
)

/**
 * `right`, or one time in `odds + 1` `wrong`; odds of Infinity: never wrong. Each part of a request
 * is wrong on its own, so a request of many parts with low odds is rarely right as a whole.
 */
export function mostly<T>(
  right: fc.Arbitrary<T>,
  wrong: fc.Arbitrary<T>,
  odds: number,
): fc.Arbitrary<T> {
  return odds === Infinity
    ? right
    : fc.oneof({ weight: odds, arbitrary: right }, { weight: 1, arbitrary: wrong })
}

/** `right`, or one time in `odds + 1` any JSON value at all. */
export function orWild(right: fc.Arbitrary<Wild>, odds: number): fc.Arbitrary<Wild> {
  return mostly(right, wildAny, odds)
}

/** `value` two times in three, else absent (undefined). */
export function optional<T>(value: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(value, { nil: undefined, freq: 3 })
}

/** An object of `entries` (an undefined value leaves its key out), one time in `odds + 1` with a key too many. */
export function object(
  entries: Record<string, fc.Arbitrary<Wild | undefined>>,
  odds: number,
): fc.Arbitrary<Obj> {
  const parts = Object.entries(entries).map(([key, arb]) =>
    arb.map((v) => (v === undefined ? [] : [[key, v] as const])),
  )
  const extra = mostly<(readonly [string, Wild])[]>(
    fc.constant([]),
    fc.tuple(wildKey, wildValue).map((e) => [e]),
    odds,
  )
  return fc
    .tuple(fc.tuple(...parts), extra)
    .map(([present, more]) => new Obj([...present.flat(), ...more]))
}
