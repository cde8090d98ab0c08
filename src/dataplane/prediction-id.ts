import { randomBytes } from 'node:crypto'
import { InvalidRequestError } from '../errors.js'

/** A client's own prediction id: at most 128 of these characters (safe in a header and a URL). */
const PREDICTION_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * The client's id for a prediction (`X-Prediction-Id`, or V2's `id`), checked; undefined when it
 * gave none (an empty V2 `id` is none: tritonclient sends one by default).
 */
export function clientPredictionId(id: string | undefined, from: string): string | undefined {
  if (id === undefined || id === '') return undefined
  if (!PREDICTION_ID.test(id))
    throw new InvalidRequestError(
      `${from} must be 1 to 128 characters of A-Z a-z 0-9 . _ : - (got ${id.length} characters)`,
    )
  return id
}

/**
 * Ids for predictions whose client gave none: a random prefix per process and a counter, so they
 * are unique across restarts and replicas without a random draw per request.
 */
export class PredictionIds {
  readonly #prefix = randomBytes(6).toString('base64url')
  #next = 0

  next(): string {
    return `${this.#prefix}-${(this.#next++).toString(36)}`
  }
}
