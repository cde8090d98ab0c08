import type { Tensor } from 'onnxruntime-node'
import { encodeTensor, type NestedValue } from '../../runtime/tensor-encode.js'

/**
 * The lines of a payload log, one JSON object each. Tensors are written as the simple API writes
 * them (nested arrays; int64 beyond 2^53 as decimal strings, non-finite floats as "NaN"...), so a
 * logged request can be sent again as it is.
 */

export type TensorsJson = Record<string, NestedValue>

/** Tensors by name as nested arrays: a copy, still readable once the tensors are handed to a worker. */
export function tensorsJson(tensors: Readonly<Record<string, Tensor>>): TensorsJson {
  // No prototype: a tensor may be named "__proto__".
  const out = Object.create(null) as TensorsJson
  for (const name in tensors) out[name] = encodeTensor(tensors[name]!, 'nested') as NestedValue
  return out
}

interface LineHead {
  readonly id: string
  readonly time: Date
  readonly model: string
  readonly version: number
}

export function predictionLine(head: LineHead, inputs: TensorsJson, outputs: TensorsJson): string {
  return JSON.stringify({
    type: 'prediction',
    id: head.id,
    time: head.time.toISOString(),
    model: head.model,
    version: head.version,
    inputs,
    outputs,
  })
}

type Truth = { readonly label: unknown } | { readonly value: unknown }

/** The truth a client gave about a logged prediction: joined to it by `id`. */
export function feedbackLine(head: LineHead, truth: Truth): string {
  return JSON.stringify({
    type: 'feedback',
    id: head.id,
    time: head.time.toISOString(),
    model: head.model,
    version: head.version,
    ...truth,
  })
}
