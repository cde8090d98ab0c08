import type { Tensor } from 'onnxruntime-node'
import { ELEMENT_TYPE_INFO, type ElementType } from './element-type.js'
import { MAX_UNKNOWN_RANK } from './tensor-decode.js'

/**
 * The deepest an answer's nested JSON arrays go: the rank up to which an output is written as
 * nested arrays (typed output has no such bound), as deep as a request's arrays may be nested.
 */
export const MAX_NESTED_RANK = MAX_UNKNOWN_RANK

/**
 * How an output will be written: `nested` JSON arrays (the simple API's default), `flat` JSON data
 * with the shape beside it (the simple API's `typed`, V2 JSON), or `binary` (the V2 binary tensor
 * data extension: raw little-endian bytes).
 */
export type OutputLayout = 'nested' | 'flat' | 'binary'

/**
 * The most bytes one element takes as JSON text, with the comma after it. Floats are written as
 * the shortest text that reads back as the same double: up to 17 significant digits, so
 * '-0.0000012345678901234567,' (26) is the longest; int64/uint64 beyond 2^53 are quoted decimals
 * ('"-9223372036854775808",', 23).
 */
const JSON_WIDTH: Readonly<Record<Exclude<ElementType, 'string'>, number>> = {
  float32: 26,
  float64: 26,
  float16: 26,
  int8: 5,
  int16: 7,
  int32: 12,
  int64: 23,
  uint8: 4,
  uint16: 6,
  uint32: 11,
  uint64: 23,
  bool: 6,
}

/** A string element as JSON: its quotes and the comma after it, besides its own bytes. */
const STRING_QUOTING = 3

/** Each output's name, datatype and shape around its data: a rank-r shape is at most 21 bytes a dim. */
function headerBytes(rank: number): number {
  return 64 + 21 * rank
}

/**
 * At least the bytes `tensor` takes once written as `layout`, estimated from its dims and element
 * type before any encoding work, in O(rank): a [1e8, 0] tensor costs 1e8 nested `[]` (300 MB) and
 * is known to before one is built. Nested JSON counts 3 bytes per array (its brackets and a comma)
 * at every level: the product of the dims before each level, which is what makes an empty tensor
 * expensive. String tensors are the exception: their elements' UTF-8 lengths are summed, after an
 * O(1) check on their count, and only until the sum passes `budget` (the return value is then
 * larger than `budget`, not exact). JSON escapes can make a string longer than its UTF-8 bytes
 * (up to 6 bytes for a control character); they are not counted.
 */
export function encodedSize(tensor: Tensor, layout: OutputLayout, budget = Infinity): number {
  const dims = tensor.dims
  const type = tensor.type as ElementType
  // Arrays of nested JSON: one at the top, then one per index of every dim but the last.
  let arrays = 0
  let elements = 1
  for (const d of dims) {
    arrays += elements
    elements *= d
    // Past 2^53 the counts are no longer exact; no limit is anywhere near.
    if (elements > Number.MAX_SAFE_INTEGER) return Infinity
  }
  const structure = headerBytes(dims.length) + (layout === 'nested' ? 3 * arrays : 2)
  if (type === 'string') {
    const perElement = layout === 'binary' ? 4 : STRING_QUOTING
    let total = structure + perElement * elements
    const strings = tensor.data as readonly string[]
    for (let i = 0; i < strings.length && total <= budget; i++)
      total += Buffer.byteLength(strings[i]!, 'utf8')
    return total
  }
  const width = layout === 'binary' ? ELEMENT_TYPE_INFO[type].bytes : JSON_WIDTH[type]
  return structure + width * elements
}
