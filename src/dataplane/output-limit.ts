import { OutputTooLargeError } from '../errors.js'
import type { Fetches } from '../runtime/session.js'
import { encodedSize, type OutputLayout } from '../runtime/tensor-size.js'

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
export function checkOutputSize(fetched: Fetches, names: readonly string[], plan: OutputPlan, limit: number): void {
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
  const alone = names.length > 1 ? `; output '${largest.name}' [${dims}] alone is ${size(largest.bytes)}` : ` (output '${largest.name}' [${dims}])`
  throw new OutputTooLargeError(
    `the answer would take an estimated ${size(total)} as ${[...layouts].map((l) => LAYOUT_NAMES[l]).join(' and ')}${alone}, more than the ${size(limit)} ` +
      `an answer may take (--max-output-size). To get one, ${plan.remedy(layouts)}`,
    { details: { estimatedBytes: Number.isFinite(total) ? total : null, limitBytes: limit } },
  )
}

function size(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'more than 2^53 bytes'
  for (const [unit, scale] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= scale) return `${Number.isInteger(bytes / scale) ? bytes / scale : (bytes / scale).toFixed(1)} ${unit}`
  }
  return `${bytes} bytes`
}
