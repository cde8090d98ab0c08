import { decodeFeeds } from '../runtime/feeds.js'
import { ModelSession } from '../runtime/session.js'
import { encodeTensor, type TypedTensorJson } from '../runtime/tensor-encode.js'
import type { EstimatorDump } from './estimator-dump.js'
import { INPUT } from './sklearn-model.js'

/**
 * The exported model run here, in onnxruntime-node as the server runs it, on the dump's check rows,
 * against scikit-learn's own answers on them. Labels must be equal; probabilities within
 * PROBABILITY_TOLERANCE; a regressor's prediction within PREDICTION_TOLERANCE × max(1, |sklearn's|)
 * (float32 keeps 7 digits: its rounding alone is 6e-8 of the value).
 */

export const PROBABILITY_TOLERANCE = 1e-6
export const PREDICTION_TOLERANCE = 1e-6

export interface Disagreement {
  /** Index in the dump's rows. */
  readonly row: number
  readonly output: string
  readonly sklearn: unknown
  readonly onnx: unknown
}

export interface ExportCheck {
  readonly rows: number
  /**
   * The largest difference the tolerance bounds: |onnx - sklearn| of a probability, or of a
   * prediction over max(1, |sklearn's|).
   */
  readonly maxDifference: number
  readonly disagreements: readonly Disagreement[]
}

export async function checkExport(bytes: Uint8Array, dump: EstimatorDump): Promise<ExportCheck> {
  const values = dump.rows.values
  const session = await ModelSession.create(bytes)
  let outputs: Record<string, TypedTensorJson>
  try {
    const feeds = decodeFeeds(
      { [INPUT]: { type: 'float32', shape: [values.length, dump.nFeatures], data: values.flat() } },
      session.signature,
    )
    const names = session.signature.outputs.map((o) => o.name)
    const fetched = await session.run(feeds, names)
    outputs = Object.fromEntries(
      names.map((n) => [n, encodeTensor(fetched[n]!, 'typed') as TypedTensorJson]),
    )
  } finally {
    await session.release()
  }
  const disagreements: Disagreement[] = []
  let maxDifference = 0
  const answers = dump.answers
  if ('prediction' in answers) {
    answers.prediction.forEach((want, row) => {
      const got = outputs.prediction?.data[row]
      const diff = Math.abs(Number(got) - want) / Math.max(1, Math.abs(want))
      maxDifference = Math.max(maxDifference, diff)
      if (!(diff <= PREDICTION_TOLERANCE))
        disagreements.push({ row, output: 'prediction', sklearn: want, onnx: got })
    })
  } else {
    const labels = outputs.label?.data ?? []
    const probabilities = outputs.probabilities?.data ?? []
    const width = dump.classes?.length ?? 0
    answers.label.forEach((want, row) => {
      // int64 labels arrive as numbers (strings beyond 2^53, which the dump refuses).
      if (labels[row] !== want)
        disagreements.push({ row, output: 'label', sklearn: want, onnx: labels[row] })
      const got = probabilities.slice(row * width, (row + 1) * width).map(Number)
      const wanted = answers.probabilities[row]!
      const diff = Math.max(...wanted.map((p, k) => Math.abs(got[k]! - p)))
      maxDifference = Math.max(maxDifference, diff)
      if (!(diff <= PROBABILITY_TOLERANCE) || got.length !== wanted.length)
        disagreements.push({ row, output: 'probabilities', sklearn: wanted, onnx: got })
    })
  }
  return { rows: values.length, maxDifference, disagreements }
}
