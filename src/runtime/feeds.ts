import type { Tensor } from 'onnxruntime-node'
import {
  InvalidRequestError,
  MissingInputError,
  UnknownInputError,
  UnknownOutputError,
} from '../errors.js'
import type { Signature } from './signature.js'
import { decodeTensor } from './tensor-decode.js'

/** A run's inputs and its outputs, by name. */
export type Feeds = Record<string, Tensor>
export type Fetches = Record<string, Tensor>

/**
 * Binds request inputs to the signature by name, never by position. A model with exactly one input
 * also takes the tensor itself instead of a `{name: tensor}` object.
 */
export function decodeFeeds(inputs: unknown, signature: Signature): Feeds {
  const specs = signature.inputs
  const isMap = inputs !== null && typeof inputs === 'object' && !Array.isArray(inputs)
  if (!isMap) {
    if (specs.length !== 1) {
      throw new InvalidRequestError(
        `"inputs" must be an object keyed by input name: the model takes ${specs.length} inputs (${names(specs)})`,
      )
    }
    const spec = specs[0]!
    return { [spec.name]: decodeTensor(inputs, spec) }
  }
  const given = inputs as Record<string, unknown>
  for (const key of Object.keys(given)) {
    if (!specs.some((s) => s.name === key)) {
      throw new UnknownInputError(
        `unknown input '${key}'; the model takes ${names(specs) || 'no inputs'}`,
      )
    }
  }
  // No prototype: a tensor may be named "__proto__", which would otherwise set the prototype.
  const feeds: Feeds = Object.create(null) as Feeds
  for (const spec of specs) {
    // hasOwn: an input may be called "constructor" or "__proto__"; never read the prototype.
    if (!Object.hasOwn(given, spec.name))
      throw new MissingInputError(`missing input '${spec.name}'; the model takes ${names(specs)}`)
    feeds[spec.name] = decodeTensor(given[spec.name], spec)
  }
  return feeds
}

/**
 * The outputs to fetch: all served outputs (`served`, the same array for every request to a
 * version, which lets the batcher group requests cheaply), or the requested subset in the order asked.
 */
export function selectOutputs(
  requested: readonly string[] | undefined,
  signature: Signature,
  served: readonly string[],
): readonly string[] {
  if (requested === undefined) return served
  const unique = [...new Set(requested)]
  for (const name of unique) {
    if (served.includes(name)) continue
    const omitted = signature.omittedOutputs.find((o) => o.name === name)
    throw new UnknownOutputError(
      omitted
        ? `output '${name}' is not served: ${omitted.reason}`
        : `unknown output '${name}'; the model has ${served.map((n) => `'${n}'`).join(', ')}`,
    )
  }
  return unique
}

function names(specs: Signature['inputs']): string {
  return specs.map((s) => `'${s.name}'`).join(', ')
}
