import { OutputTooLargeError } from '../errors.js'
import type { Fetches } from '../runtime/feeds.js'
import { encodedSize, MAX_NESTED_RANK, type OutputLayout } from '../runtime/tensor-size.js'

/** How a request's outputs will be written, as the API that answers it knows. */
export interface OutputPlan {
  layout(name: string): OutputLayout
  /** What the client can ask for instead, given the layouts its answer would use. */
  remedy(layouts: ReadonlySet<OutputLayout>): string
}

const LAYOUT_NAMES: Readonly<Record<OutputLayout, string>> = {
  nested: 'nested JSON arrays',
  flat: 'flat JSON data',
  binary: 'binary data',
}

/**
 * Refuses an answer that would take more than `limit` bytes once encoded, estimated from the
 * fetched tensors' dims and element types (O(outputs)), before any encoding work: the
 * encoders then never build more than the limit allows, whatever the model returned.
 */
export function checkOutputSize(
  fetched: Fetches,
  names: readonly string[],
  plan: OutputPlan,
  limit: number,
): void {
  checkNesting(fetched, names, plan)
  let total = 0
  let largest = { name: '', bytes: -1 }
  const layouts = new Set<OutputLayout>()
  for (const name of names) {
    const layout = plan.layout(name)
    layouts.add(layout)
    const bytes = encodedSize(fetched[name]!, layout, limit - total)
    total += bytes
    if (bytes > largest.bytes) largest = { name, bytes }
  }
  if (total <= limit) return
  const dims = fetched[largest.name]!.dims.join(', ')
  const alone =
    names.length > 1
      ? `; output '${largest.name}' [${dims}] alone is ${size(largest.bytes)}`
      : ` (output '${largest.name}' [${dims}])`
  throw new OutputTooLargeError(
    `the answer would take an estimated ${size(total)} as ${[...layouts].map((l) => LAYOUT_NAMES[l]).join(' and ')}${alone}, more than the ${size(limit)} ` +
      `an answer may take (--max-output-size). To get one, ${plan.remedy(layouts)}`,
    { details: { estimatedBytes: Number.isFinite(total) ? total : null, limitBytes: limit } },
  )
}

/**
 * Refuses an output whose nested JSON would be deeper than MAX_NESTED_RANK arrays: few bytes (a
 * Reshape to 10,000 dims of 1 is a 1-element tensor), but nesting that deep overflows the stack of
 * the encoder and of JSON.stringify. Typed output writes the same tensor flat, beside its shape.
 */
function checkNesting(fetched: Fetches, names: readonly string[], plan: OutputPlan): void {
  for (const name of names) {
    const rank = fetched[name]!.dims.length
    if (rank <= MAX_NESTED_RANK || plan.layout(name) !== 'nested') continue
    throw new OutputTooLargeError(
      `output '${name}' has rank ${rank}: as nested JSON arrays it would be nested ${rank} deep, more than the ${MAX_NESTED_RANK} an answer may be. ` +
        'To get it, ask for "output_format": "typed" (flat data beside its shape)',
      { details: { rank, maxNestedRank: MAX_NESTED_RANK } },
    )
  }
}

function size(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'more than 2^53 bytes'
  for (const [unit, scale] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= scale)
      return `${Number.isInteger(bytes / scale) ? bytes / scale : (bytes / scale).toFixed(1)} ${unit}`
  }
  return `${bytes} bytes`
}
