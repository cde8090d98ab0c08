import type { Tensor } from 'onnxruntime-node'
import type { Feeds } from '../../runtime/feeds.js'
import { fromFloat16Bits } from '../../runtime/float16.js'
import type { Signature, TensorSpec } from '../../runtime/signature.js'
import type { FeatureKind } from './feature-window.js'

/** Where a feature's values go: its window, or a sample being read from reference.json. */
export interface ValueSink {
  add(value: unknown): void
}

export interface FeatureSpec {
  readonly input: string
  /** The column (`"3"`), `""` for a rank-1 input, `mean` / `std`, or `frequency`. */
  readonly feature: string
  readonly kind: FeatureKind
}

/** A rank-2 input wider than this is summarized per row (mean, std) instead of column by column. */
const MAX_COLUMNS = 256

type Layout =
  /** [batch, F]: each column a feature. */
  | { readonly kind: 'columns'; readonly width: number }
  /** Rank 0 or 1: each element is a row of the one feature. */
  | { readonly kind: 'values' }
  /** Higher rank (or rank 2 of unknown or large width): each row's mean and standard deviation. */
  | { readonly kind: 'summary' }
  /** string or bool: each element's value. */
  | { readonly kind: 'categories' }

interface InputPlan {
  readonly name: string
  readonly layout: Layout
  /** Its first feature's index in `features`. */
  readonly first: number
}

/**
 * The drift features of a signature's inputs (README: model.json `drift`), and how a request's
 * feeds are read into them. Inputs of unknown rank have none: their layout is not known ahead.
 */
export class InputFeatures {
  readonly features: readonly FeatureSpec[]
  readonly #plans: readonly InputPlan[]

  constructor(signature: Signature) {
    const features: FeatureSpec[] = []
    const plans: InputPlan[] = []
    for (const spec of signature.inputs) {
      const layout = layoutOf(spec)
      if (!layout) continue
      plans.push({ name: spec.name, layout, first: features.length })
      features.push(...featuresOf(spec.name, layout))
    }
    this.features = features
    this.#plans = plans
  }

  /**
   * Hands each feature's values in `feeds` to its sink (`sinks[i]` for `features[i]`). A tensor
   * whose shape does not fit its input's layout is skipped (the signature allows it).
   */
  observe(feeds: Feeds, sinks: readonly ValueSink[]): void {
    for (const plan of this.#plans) {
      const t = feeds[plan.name]
      if (t) observeTensor(t, plan, sinks)
    }
  }
}

function layoutOf(spec: TensorSpec): Layout | undefined {
  if (spec.type === 'string' || spec.type === 'bool') return { kind: 'categories' }
  const shape = spec.shape
  if (shape === null) return undefined
  if (shape.length <= 1) return { kind: 'values' }
  const width = shape[1]
  if (shape.length === 2 && typeof width === 'number' && width > 0 && width <= MAX_COLUMNS)
    return { kind: 'columns', width }
  return { kind: 'summary' }
}

function featuresOf(input: string, layout: Layout): FeatureSpec[] {
  switch (layout.kind) {
    case 'columns':
      return Array.from({ length: layout.width }, (_, c) => ({
        input,
        feature: String(c),
        kind: 'numeric' as const,
      }))
    case 'values':
      return [{ input, feature: '', kind: 'numeric' }]
    case 'summary':
      return [
        { input, feature: 'mean', kind: 'numeric' },
        { input, feature: 'std', kind: 'numeric' },
      ]
    case 'categories':
      return [{ input, feature: 'frequency', kind: 'category' }]
  }
}

function observeTensor(t: Tensor, plan: InputPlan, sinks: readonly ValueSink[]): void {
  const data = t.data as ArrayLike<unknown>
  const layout = plan.layout
  if (layout.kind === 'categories') {
    const sink = sinks[plan.first]!
    for (let i = 0; i < data.length; i++) sink.add(data[i])
    return
  }
  const read = readerOf(t.type)
  if (layout.kind === 'values') {
    const sink = sinks[plan.first]!
    for (let i = 0; i < data.length; i++) sink.add(read(data, i))
    return
  }
  const rows = t.dims[0] ?? 0
  if (rows === 0 || data.length === 0) return
  const width = data.length / rows
  if (layout.kind === 'columns') {
    if (t.dims.length !== 2 || width !== layout.width) return
    for (let c = 0; c < width; c++) {
      const sink = sinks[plan.first + c]!
      for (let r = 0; r < rows; r++) sink.add(read(data, r * width + c))
    }
    return
  }
  const mean = sinks[plan.first]!
  const std = sinks[plan.first + 1]!
  for (let r = 0; r < rows; r++) {
    // Welford's update: one pass, no cancellation for values far from zero.
    let m = 0
    let s = 0
    for (let i = 0; i < width; i++) {
      const v = read(data, r * width + i)
      const d = v - m
      m += d / (i + 1)
      s += d * (v - m)
    }
    mean.add(m)
    std.add(Math.sqrt(s / width))
  }
}

type Reader = (data: ArrayLike<unknown>, i: number) => number

const readNumber: Reader = (data, i) => data[i] as number
const readBigInt: Reader = (data, i) => Number(data[i] as bigint)
// onnxruntime-node carries float16 as Uint16Array bit patterns.
const readFloat16: Reader = (data, i) => fromFloat16Bits(data[i] as number)

function readerOf(type: Tensor.Type): Reader {
  if (type === 'int64' || type === 'uint64') return readBigInt
  if (type === 'float16') return readFloat16
  return readNumber
}
