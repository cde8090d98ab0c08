import { formatBytes } from '../format-bytes.js'
import { ELEMENT_TYPE_INFO } from './element-type.js'
import type { Signature } from './signature.js'
import { syntheticDims } from './synthetic-feeds.js'

/**
 * The most memory an input the gate invents may take (the smoke stage of a version without smoke
 * cases, warm-up): a model whose fixed dims ask for more (`[1000000000000]`) would otherwise have
 * the gate allocate it, and fail with a RangeError or take the memory of the machine.
 */
const SYNTHETIC_INPUT_MAX_BYTES = 256 * 2 ** 20

/** A string element is held as a reference: count it as one pointer. */
const STRING_ELEMENT_BYTES = 8

/**
 * Why the synthesized input at `batch` rows is too large to build, or undefined when it is not.
 * Computes sizes only; allocates nothing.
 */
export function oversizedSyntheticInput(signature: Signature, batch: number): string | undefined {
  let total = 0
  let largest = { name: '', dims: [] as number[], type: '', bytes: 0 }
  for (const spec of signature.inputs) {
    const dims = syntheticDims(spec, batch)
    const bytes =
      dims.reduce((a, b) => a * b, 1) * (ELEMENT_TYPE_INFO[spec.type].bytes || STRING_ELEMENT_BYTES)
    total += bytes
    if (bytes >= largest.bytes) largest = { name: spec.name, dims, type: spec.type, bytes }
  }
  if (total <= SYNTHETIC_INPUT_MAX_BYTES) return undefined
  return (
    `a synthesized input at batch size ${batch} would take ${Number.isSafeInteger(total) ? total : total.toExponential(2)} bytes, over the limit of ` +
    `${formatBytes(SYNTHETIC_INPUT_MAX_BYTES)} (input '${largest.name}' is ${largest.type} [${largest.dims.join(', ')}])`
  )
}
