import type { Tensor } from 'onnxruntime-node'
import type { Fetches } from '../runtime/feeds.js'
import { fromFloat16Bits } from '../runtime/float16.js'
import type { Signature } from '../runtime/signature.js'

/** Rows of one prediction remembered for feedback; a larger batch is not scored. */
const MAX_SCORED_ROWS = 1024

/** What a prediction answered, row by row, as feedback scores it. */
export interface Answer {
  /** The label of each row, as text (int64 beyond 2^53 and string labels compare exactly). */
  readonly labels: readonly string[] | undefined
  /** The first numeric value of each row (regression feedback). */
  readonly values: readonly number[] | undefined
}

/** Which outputs hold the label and the value, decided once per version and configuration. */
export interface AnswerPlan {
  readonly label: { readonly output: string; readonly argmax: boolean } | undefined
  readonly value: string | undefined
}

const NUMERIC = new Set(['float32', 'float64', 'float16', 'int8', 'int16', 'int32', 'int64'])
const FLOAT = new Set(['float32', 'float64', 'float16'])
const LABEL = new Set(['int64', 'int32', 'string'])

/**
 * The label is `configured` (model.json `feedback.output`), else an output named `label`, else the
 * first int64, int32 or string output, else the argmax of the first float output; the value is the
 * first numeric output.
 */
export function answerPlan(signature: Signature, configured: string | undefined): AnswerPlan {
  const outputs = signature.outputs
  const named = configured ?? (outputs.some((o) => o.name === 'label') ? 'label' : undefined)
  const chosen =
    named !== undefined
      ? outputs.find((o) => o.name === named)
      : (outputs.find((o) => LABEL.has(o.type)) ?? outputs.find((o) => FLOAT.has(o.type)))
  return {
    label: chosen && { output: chosen.name, argmax: FLOAT.has(chosen.type) },
    value: outputs.find((o) => NUMERIC.has(o.type))?.name,
  }
}

/** The answer of one prediction, from the outputs it fetched (one not fetched cannot be scored). */
export function answerOf(plan: AnswerPlan, fetched: Fetches): Answer {
  const labelTensor = plan.label && fetched[plan.label.output]
  const valueTensor = plan.value === undefined ? undefined : fetched[plan.value]
  return {
    labels: labelTensor && labelsOf(labelTensor, plan.label!.argmax),
    values: valueTensor && valuesOf(valueTensor),
  }
}

function rows(t: Tensor): number {
  return t.dims.length === 0 ? 1 : t.dims[0]!
}

function labelsOf(t: Tensor, argmax: boolean): string[] | undefined {
  const n = rows(t)
  if (n > MAX_SCORED_ROWS || n === 0) return undefined
  const data = t.data as ArrayLike<number | bigint | string>
  const width = data.length / n
  const labels: string[] = []
  for (let r = 0; r < n; r++) {
    if (!argmax) {
      labels.push(String(data[r * width]))
      continue
    }
    let best = 0
    for (let i = 1; i < width; i++)
      if (numberAt(t, r * width + i) > numberAt(t, r * width + best)) best = i
    labels.push(String(best))
  }
  return labels
}

function valuesOf(t: Tensor): number[] | undefined {
  const n = rows(t)
  if (n > MAX_SCORED_ROWS || n === 0) return undefined
  const width = (t.data as ArrayLike<unknown>).length / n
  const values: number[] = []
  for (let r = 0; r < n; r++) values.push(numberAt(t, r * width))
  return values
}

/** Element `i` as a number: onnxruntime-node carries float16 as Uint16Array bit patterns. */
function numberAt(t: Tensor, i: number): number {
  const v = (t.data as ArrayLike<number | bigint>)[i]!
  return t.type === 'float16' ? fromFloat16Bits(v as number) : Number(v)
}
