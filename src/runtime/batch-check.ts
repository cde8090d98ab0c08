import { Tensor } from 'onnxruntime-node'
import { allocate, type ElementType } from './element-type.js'
import { concatFeeds, isBatchable } from './batcher.js'
import { fromFloat16Bits } from './float16.js'
import type { Engine } from './engine.js'
import type { Feeds, Fetches } from './feeds.js'

export interface BatchingDecision {
  readonly enabled: boolean
  /** Why batching is on or off, as GET /models/{name} shows it. */
  readonly reason: string
}

/** model.json's `batching` as the decision needs it. */
export interface BatchingConfig {
  readonly enabled?: boolean | undefined
  readonly maxBatchSize: number
}

/**
 * Whether a version's requests run together: what model.json says, else what the check finds.
 * The server and `modelgate validate` decide the same way, so the warm-up they run is the same.
 */
export async function decideBatching(
  session: Engine,
  config: BatchingConfig,
  feeds: readonly Feeds[],
): Promise<BatchingDecision> {
  if (config.enabled === false)
    return { enabled: false, reason: 'batching.enabled is false in model.json' }
  if (config.maxBatchSize === 1) return { enabled: false, reason: 'batching.maxBatchSize is 1' }
  if (config.enabled === true && isBatchable(session.signature))
    return { enabled: true, reason: 'batching.enabled is true in model.json' }
  return checkBatching(session, feeds)
}

/**
 * Is it safe to run this model's requests together? Its signature must have a dynamic leading dim
 * everywhere, and, checked on the session itself: two different inputs run together must give
 * what each gives alone (a model that normalizes over the batch, or mixes rows, does not).
 * Checked with two smoke inputs when there are, else with two synthetic rows of different values.
 */
export async function checkBatching(
  session: Engine,
  candidates: readonly Feeds[],
): Promise<BatchingDecision> {
  const signature = session.signature
  if (!isBatchable(signature)) {
    return { enabled: false, reason: 'not every input and output has a dynamic leading dim' }
  }
  const outputs = signature.outputs.map((o) => o.name)
  const pair = pickPair(candidates) ?? [syntheticRow(session, 0), syntheticRow(session, 1)]
  try {
    const [a, b] = pair
    const alone = [await session.run(a, outputs), await session.run(b, outputs)]
    const together = await session.run(concatFeeds([a, b]), outputs)
    const rowsA = a[signature.inputs[0]!.name]!.dims[0] as number
    for (const name of outputs) {
      const t = together[name]!
      if (t.dims[0] !== rowsA + (b[signature.inputs[0]!.name]!.dims[0] as number)) {
        return { enabled: false, reason: `output '${name}' does not have one row per input row` }
      }
      if (!sameRows(alone[0]![name]!, t, 0) || !sameRows(alone[1]![name]!, t, rowsA)) {
        return { enabled: false, reason: `output '${name}' changes when other rows run beside it` }
      }
    }
  } catch (e) {
    return { enabled: false, reason: `could not be checked: ${(e as Error).message}` }
  }
  return {
    enabled: true,
    reason: 'rows are independent (checked on two inputs run alone and together)',
  }
}

/** Two inputs of one request each whose trailing dims agree, so they can share a run. */
function pickPair(candidates: readonly Feeds[]): [Feeds, Feeds] | undefined {
  const key = (f: Feeds) =>
    Object.entries(f)
      .map(([n, t]) => `${n}:${t.dims.slice(1).join(',')}:${t.dims.length}`)
      .join(';')
  for (let i = 0; i < candidates.length; i++) {
    for (let j = i + 1; j < candidates.length; j++) {
      const a = candidates[i]!
      const b = candidates[j]!
      if (key(a) === key(b) && differ(a, b)) return [a, b]
    }
  }
  return undefined
}

function differ(a: Feeds, b: Feeds): boolean {
  return Object.keys(a).some((n) => {
    const x = a[n]!.data as ArrayLike<unknown>
    const y = b[n]!.data as ArrayLike<unknown>
    if (x.length !== y.length) return true
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return true
    return false
  })
}

/** One row per input, every element the same value: 0.25 or -0.5, 0 or 1, false or true, "a" or "b". */
function syntheticRow(session: Engine, which: 0 | 1): Feeds {
  const feeds = Object.create(null) as Feeds
  for (const spec of session.signature.inputs) {
    const dims = spec.shape!.map((d, i) => (i === 0 ? 1 : typeof d === 'number' ? d : 1))
    const data = allocate(
      spec.type,
      dims.reduce((a, b) => a * b, 1),
    )
    fill(data, spec.type, which)
    feeds[spec.name] = new Tensor(spec.type, data as never, dims)
  }
  return feeds
}

function fill(data: ReturnType<typeof allocate>, type: ElementType, which: 0 | 1): void {
  if (Array.isArray(data)) data.fill(which ? 'b' : 'a')
  else if (data instanceof BigInt64Array || data instanceof BigUint64Array) data.fill(BigInt(which))
  else if (type === 'float32' || type === 'float64')
    (data as Float32Array).fill(which ? -0.5 : 0.25)
  else if (type === 'float16')
    (data as Uint16Array).fill(which ? 0xb800 : 0x3400) // -0.5, 0.25
  else (data as Uint8Array).fill(which)
}

/** Does `whole` hold `part` starting at row `firstRow`? Floats within a tight tolerance. */
function sameRows(part: Fetches[string], whole: Fetches[string], firstRow: number): boolean {
  if (part.dims.slice(1).join(',') !== whole.dims.slice(1).join(',')) return false
  const rowSize = part.dims.slice(1).reduce((a, b) => a * b, 1)
  const p = part.data as ArrayLike<number | bigint | string>
  const w = whole.data as ArrayLike<number | bigint | string>
  const offset = firstRow * rowSize
  const half = part.type === 'float16'
  const float = half || part.type === 'float32' || part.type === 'float64'
  for (let i = 0; i < p.length; i++) {
    const x = half ? fromFloat16Bits(p[i] as number) : p[i]!
    const y = half ? fromFloat16Bits(w[offset + i] as number) : w[offset + i]!
    if (float) {
      const a = x as number
      const b = y as number
      if (!(Number.isNaN(a) && Number.isNaN(b)) && !(Math.abs(a - b) <= 1e-5 + 1e-4 * Math.abs(a)))
        return false
    } else if (x !== y) {
      return false
    }
  }
  return true
}
