import type { ElementType } from './element-type.js'
import { fromFloat16Bits, toFloat16Bits } from './float16.js'

/**
 * One JSON value <-> one stored element, per element type. JSON has no NaN or Infinity, so they
 * travel as the strings "NaN", "Infinity", "-Infinity"; int64/uint64 travel as numbers or as decimal
 * strings, because a JSON number cannot hold every 64-bit integer exactly.
 */

/** Thrown by a reader for one element; the caller adds where the element was. */
export class ElementError extends Error {
  constructor(
    readonly kind: 'type' | 'value',
    message: string,
  ) {
    super(message)
  }
}

export type Stored = number | bigint | string
export type ElementReader = (value: unknown) => Stored

function nonFinite(value: string): number | undefined {
  switch (value) {
    case 'NaN':
      return NaN
    case 'Infinity':
      return Infinity
    case '-Infinity':
      return -Infinity
    default:
      return undefined
  }
}

function readFloat(type: string): ElementReader {
  return function readFloatElement(value) {
    if (typeof value === 'number') return value
    // An integer literal too long for a double, as an exact JSON parser returns it.
    if (typeof value === 'bigint') return Number(value)
    if (typeof value === 'string') {
      const v = nonFinite(value)
      if (v !== undefined) return v
    }
    throw new ElementError(
      'type',
      `expected a number (${type}) or "NaN"/"Infinity"/"-Infinity", got ${show(value)}`,
    )
  }
}

function readInteger(type: string, min: number, max: number): ElementReader {
  return function readIntegerElement(value) {
    if (typeof value === 'bigint')
      throw new ElementError('value', `${value} is not a ${type} (an integer in [${min}, ${max}])`)
    if (typeof value !== 'number')
      throw new ElementError('type', `expected an integer (${type}), got ${show(value)}`)
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ElementError(
        'value',
        `${show(value)} is not a ${type} (an integer in [${min}, ${max}])`,
      )
    }
    return value
  }
}

const DECIMAL = /^[+-]?\d+$/

function readBigInteger(type: string, min: bigint, max: bigint): ElementReader {
  return function readBigIntegerElement(value) {
    let v: bigint
    if (typeof value === 'number') {
      if (!Number.isInteger(value))
        throw new ElementError('value', `${show(value)} is not a ${type} (an integer)`)
      // JSON.parse has already rounded a number beyond 2^53: refuse it rather than serve a
      // silently different value.
      if (!Number.isSafeInteger(value)) {
        throw new ElementError(
          'value',
          `${show(value)} is beyond 2^53, where a JSON number is not exact; send ${type} values this large as decimal strings`,
        )
      }
      v = BigInt(value)
    } else if (typeof value === 'string' && DECIMAL.test(value)) {
      // Anything this long is out of range; do not build a huge BigInt to find out.
      if (value.length > 24)
        throw new ElementError(
          'value',
          `${show(value)} is out of range for ${type} [${min}, ${max}]`,
        )
      v = BigInt(value)
    } else if (typeof value === 'bigint') {
      v = value
    } else {
      throw new ElementError(
        'type',
        `expected an integer (${type}) as a number or a decimal string, got ${show(value)}`,
      )
    }
    if (v < min || v > max)
      throw new ElementError('value', `${show(value)} is out of range for ${type} [${min}, ${max}]`)
    return v
  }
}

const readFloat16Value = readFloat('float16')

export const ELEMENT_READERS: Readonly<Record<ElementType, ElementReader>> = {
  float32: readFloat('float32'),
  float64: readFloat('float64'),
  float16: (value) => toFloat16Bits(readFloat16Value(value) as number),
  int8: readInteger('int8', -128, 127),
  int16: readInteger('int16', -32768, 32767),
  int32: readInteger('int32', -2147483648, 2147483647),
  uint8: readInteger('uint8', 0, 255),
  uint16: readInteger('uint16', 0, 65535),
  uint32: readInteger('uint32', 0, 4294967295),
  int64: readBigInteger('int64', -(2n ** 63n), 2n ** 63n - 1n),
  uint64: readBigInteger('uint64', 0n, 2n ** 64n - 1n),
  bool: function readBool(value) {
    if (value === true || value === 1) return 1
    if (value === false || value === 0) return 0
    throw new ElementError('type', `expected a boolean, got ${show(value)}`)
  },
  string: function readString(value) {
    if (typeof value !== 'string')
      throw new ElementError('type', `expected a string, got ${show(value)}`)
    // onnxruntime-node cuts a string at its first NUL: refuse it rather than change it.
    if (value.includes('\u0000'))
      throw new ElementError(
        'value',
        'a string holding U+0000 (NUL), which onnxruntime-node would cut short',
      )
    return value
  },
}

export type JsonElement = number | string | boolean

function writeFloat(value: number): JsonElement {
  // value - value is NaN exactly for NaN and ±Infinity: one check on the common path.
  if (value - value === 0) return value
  return value > 0 ? 'Infinity' : value < 0 ? '-Infinity' : 'NaN'
}

function writeBigInteger(value: bigint): JsonElement {
  return value <= 9007199254740991n && value >= -9007199254740991n
    ? Number(value)
    : value.toString()
}

/** Stored element -> JSON value. Identity for the types whose every value JSON holds exactly. */
export const ELEMENT_WRITERS: Readonly<
  Record<ElementType, ((value: never) => JsonElement) | undefined>
> = {
  float32: writeFloat,
  float64: writeFloat,
  float16: (bits: number) => writeFloat(fromFloat16Bits(bits)),
  int8: undefined,
  int16: undefined,
  int32: undefined,
  uint8: undefined,
  uint16: undefined,
  uint32: undefined,
  int64: writeBigInteger,
  uint64: writeBigInteger,
  bool: (value: number) => value !== 0,
  string: undefined,
}

/** A request value as an error message quotes it: at most 40 characters of its JSON. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (typeof value === 'bigint') return value.toString()
  let json: string
  try {
    json = JSON.stringify(value)
  } catch {
    // JSON.stringify recurses: a value nested thousands deep overflows the stack (a RangeError).
    return Array.isArray(value)
      ? 'an array nested too deep to show'
      : 'an object nested too deep to show'
  }
  return json.length > 40 ? `${json.slice(0, 37)}...` : json
}
