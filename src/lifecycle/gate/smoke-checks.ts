import type { Tensor } from 'onnxruntime-node'
import type { SmokeCase } from '../../repository/smoke-file.js'
import type { ElementType } from '../../runtime/element-type.js'
import { fromFloat16Bits } from '../../runtime/float16.js'
import type { Fetches } from '../../runtime/feeds.js'
import type { Signature, TensorSpec } from '../../runtime/signature.js'
import { decodeTensor } from '../../runtime/tensor-decode.js'

/** Pure checks of one smoke case's outputs against what it expects. No I/O, no runtime calls. */

export interface CaseFailure {
  readonly reason: 'expect_mismatch' | 'non_finite_output' | 'out_of_range' | 'smoke_case_invalid'
  readonly message: string
}

export interface LabelTally {
  readonly correct: number
  readonly total: number
  readonly mismatches: readonly string[]
}

const FLOAT_TYPES: ReadonlySet<ElementType> = new Set(['float32', 'float64', 'float16'])

/** Numeric view of a tensor's values: float16 bit patterns become numbers, others as stored. */
export function valuesOf(tensor: Tensor): ArrayLike<number | bigint | string> {
  const data = tensor.data as ArrayLike<number | bigint | string>
  if (tensor.type !== 'float16') return data
  return Array.from(data as ArrayLike<number>, fromFloat16Bits)
}

export function isFloat(type: string): boolean {
  return FLOAT_TYPES.has(type as ElementType)
}

export function withinTolerance(
  got: number,
  want: number,
  tol: { atol: number; rtol: number },
): boolean {
  if (Number.isNaN(want)) return Number.isNaN(got)
  if (!Number.isFinite(want)) return got === want
  return Math.abs(got - want) <= tol.atol + tol.rtol * Math.abs(want)
}

export function checkFinite(fetched: Fetches): CaseFailure | undefined {
  for (const [name, tensor] of Object.entries(fetched)) {
    if (!isFloat(tensor.type)) continue
    const values = valuesOf(tensor) as ArrayLike<number>
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) {
        return { reason: 'non_finite_output', message: `output '${name}'[${i}] is ${values[i]}` }
      }
    }
  }
  return undefined
}

export function checkExpect(
  c: SmokeCase,
  signature: Signature,
  fetched: Fetches,
): CaseFailure | undefined {
  for (const [name, expected] of Object.entries(c.expect ?? {})) {
    const spec = signature.outputs.find((o) => o.name === name)
    const got = fetched[name]
    if (!spec || !got)
      return {
        reason: 'smoke_case_invalid',
        message: `expect names output '${name}', which the model does not serve`,
      }
    let want: Tensor
    try {
      // Expected values are written like inputs; the output's spec types and shape-checks them.
      want = decodeTensor(expected, { ...spec, shape: null } satisfies TensorSpec)
    } catch (e) {
      return {
        reason: 'smoke_case_invalid',
        message: `expect '${name}': ${(e as Error).message.replace(/^input '[^']*'/, 'value')}`,
      }
    }
    const gotDims = got.dims.join(',')
    if (gotDims !== want.dims.join(',')) {
      return {
        reason: 'expect_mismatch',
        message: `output '${name}' has shape [${gotDims}], expected [${want.dims.join(',')}]`,
      }
    }
    const g = valuesOf(got)
    const w = valuesOf(want)
    const float = isFloat(got.type)
    for (let i = 0; i < g.length; i++) {
      const ok = float
        ? withinTolerance(g[i] as number, w[i] as number, c.tolerance)
        : g[i] === w[i]
      if (!ok) {
        const tol = float ? ` (atol ${c.tolerance.atol}, rtol ${c.tolerance.rtol})` : ''
        return {
          reason: 'expect_mismatch',
          message: `output '${name}'[${i}] is ${String(g[i])}, expected ${String(w[i])}${tol}`,
        }
      }
    }
  }
  return undefined
}

export function checkRange(c: SmokeCase, fetched: Fetches): CaseFailure | undefined {
  for (const [name, { min, max }] of Object.entries(c.range ?? {})) {
    const got = fetched[name]
    if (!got)
      return {
        reason: 'smoke_case_invalid',
        message: `range names output '${name}', which the model does not serve`,
      }
    if (got.type === 'string' || got.type === 'bool')
      return { reason: 'smoke_case_invalid', message: `range on non-numeric output '${name}'` }
    const values = valuesOf(got)
    for (let i = 0; i < values.length; i++) {
      const v = Number(values[i])
      if (!(v >= (min ?? -Infinity) && v <= (max ?? Infinity))) {
        return {
          reason: 'out_of_range',
          message: `output '${name}'[${i}] = ${v} is outside [${min ?? '-inf'}, ${max ?? 'inf'}]`,
        }
      }
    }
  }
  return undefined
}

/**
 * Predicted label per row: the argmax over the last axis of a float scores output, or the values
 * of a label output (int, string, bool), flattened.
 */
export function predictedLabels(tensor: Tensor): (number | string)[] {
  const values = valuesOf(tensor)
  if (isFloat(tensor.type)) {
    const dims = tensor.dims
    const width = dims.length === 0 ? 1 : dims[dims.length - 1]!
    const rows = width === 0 ? 0 : values.length / width
    const labels: number[] = []
    for (let r = 0; r < rows; r++) {
      let best = 0
      for (let j = 1; j < width; j++)
        if ((values[r * width + j] as number) > (values[r * width + best] as number)) best = j
      labels.push(best)
    }
    return labels
  }
  return Array.from(values, (v) =>
    typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? v : Number(v),
  )
}

export function tallyLabels(c: SmokeCase, fetched: Fetches): LabelTally | CaseFailure {
  const label = c.label!
  const got = fetched[label.output]
  if (!got)
    return {
      reason: 'smoke_case_invalid',
      message: `label names output '${label.output}', which the model does not serve`,
    }
  const predicted = predictedLabels(got)
  const wanted = Array.isArray(label.value) ? label.value : [label.value]
  if (predicted.length !== wanted.length) {
    return {
      reason: 'smoke_case_invalid',
      message: `label has ${wanted.length} value(s) for ${predicted.length} predicted row(s) of '${label.output}'`,
    }
  }
  let correct = 0
  const mismatches: string[] = []
  wanted.forEach((w, i) => {
    if (predicted[i] === w) correct++
    else
      mismatches.push(
        `${c.name}${wanted.length > 1 ? `[${i}]` : ''}: predicted ${JSON.stringify(predicted[i])}, expected ${JSON.stringify(w)}`,
      )
  })
  return { correct, total: wanted.length, mismatches }
}

/** Same type, dims and values: floats within the tolerance, everything else exactly. */
export function sameTensor(a: Tensor, b: Tensor, tol: { atol: number; rtol: number }): boolean {
  if (a.type !== b.type || a.dims.join(',') !== b.dims.join(',')) return false
  const x = valuesOf(a)
  const y = valuesOf(b)
  const float = isFloat(a.type)
  for (let i = 0; i < x.length; i++) {
    if (float ? !withinTolerance(x[i] as number, y[i] as number, tol) : x[i] !== y[i]) return false
  }
  return true
}
