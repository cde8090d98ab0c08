import { Tensor } from 'onnxruntime-node'
import { allocate } from './element-type.js'
import type { Feeds } from './feeds.js'
import type { Signature, TensorSpec } from './signature.js'

/**
 * Inputs invented from a signature: zeros (empty strings, false), the leading dynamic dim set to
 * `batch`, other dynamic dims 1, unknown rank [batch]. For warm-up, and for the best-effort check
 * of a version that has no smoke cases.
 */
export function syntheticFeeds(signature: Signature, batch = 1): Feeds {
  const feeds = Object.create(null) as Feeds
  for (const spec of signature.inputs) {
    const dims = syntheticDims(spec, batch)
    const data = allocate(
      spec.type,
      dims.reduce((a, b) => a * b, 1),
    )
    if (Array.isArray(data)) data.fill('')
    feeds[spec.name] = new Tensor(spec.type, data as never, dims)
  }
  return feeds
}

/** The dims syntheticFeeds gives an input: what the gate checks before allocating them. */
export function syntheticDims(spec: TensorSpec, batch: number): number[] {
  return spec.shape === null
    ? [batch]
    : spec.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? batch : 1))
}
