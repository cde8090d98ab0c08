import type { Answer } from './prediction-answer.js'

/** A prediction remembered for feedback: never its inputs. */
export interface RememberedPrediction {
  readonly version: number
  readonly at: number
  readonly answer: Answer
  /** Feedback was given for it: more is a duplicate. */
  scored: boolean
}

/**
 * The last `capacity` predictions of one model, by id, for feedback to score. A Map keeps
 * insertion order, so the oldest is the first key: adding and evicting are O(1). An id used again
 * replaces its earlier prediction.
 */
export class PredictionLog {
  readonly #entries = new Map<string, RememberedPrediction>()
  #capacity: number

  constructor(capacity: number) {
    this.#capacity = capacity
  }

  /** model.json changed `feedback.remember`: the oldest go now if it shrank. */
  resize(capacity: number): void {
    this.#capacity = capacity
    this.#evict()
  }

  remember(id: string, version: number, answer: Answer): void {
    if (this.#capacity === 0) return
    this.#entries.delete(id)
    this.#entries.set(id, { version, at: Date.now(), answer, scored: false })
    this.#evict()
  }

  get(id: string): RememberedPrediction | undefined {
    return this.#entries.get(id)
  }

  get capacity(): number {
    return this.#capacity
  }

  #evict(): void {
    while (this.#entries.size > this.#capacity)
      this.#entries.delete(this.#entries.keys().next().value!)
  }
}
