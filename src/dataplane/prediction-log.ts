import type { Answer } from './prediction-answer.js'

/** A prediction remembered for feedback: never its inputs. */
export interface RememberedPrediction {
  readonly version: number
  readonly at: number
  readonly answer: Answer
  /** Feedback was given for it: more is a duplicate. */
  readonly scored: boolean
}

/**
 * The last `capacity` predictions of one model, by id, for feedback to score: a ring of slots
 * (the oldest is overwritten) and an index from id to slot. An id used again takes a new slot, as
 * the newest; its old slot is left empty.
 *
 * Not a Map in insertion order with the oldest key deleted: V8 leaves a deleted entry in place
 * until the table is rebuilt, so finding the first live key walks every one deleted before it.
 * At 100k entries that cost ~35 µs per prediction and halved the throughput of a small model
 * (measured with wrk against the previous build); the ring costs ~1 µs.
 */
export class PredictionLog {
  #capacity: number
  #ids: (string | undefined)[] = []
  #versions: number[] = []
  #at: number[] = []
  #answers: (Answer | undefined)[] = []
  #scored: boolean[] = []
  readonly #index = new Map<string, number>()
  /** The slot the next prediction takes. */
  #next = 0

  constructor(capacity: number) {
    this.#capacity = capacity
  }

  get capacity(): number {
    return this.#capacity
  }

  /** model.json changed `feedback.remember`: the newest are kept, the oldest go now if it shrank. */
  resize(capacity: number): void {
    const kept: [string, RememberedPrediction][] = []
    for (let i = 0; i < this.#ids.length; i++) {
      const slot = (this.#next + i) % this.#ids.length // oldest first
      const id = this.#ids[slot]
      if (id !== undefined) kept.push([id, this.#entry(slot)])
    }
    this.#capacity = capacity
    this.#ids = []
    this.#versions = []
    this.#at = []
    this.#answers = []
    this.#scored = []
    this.#index.clear()
    this.#next = 0
    for (const [id, p] of kept.slice(Math.max(0, kept.length - capacity))) {
      this.#put(id, p.version, p.answer, p.at)
      if (p.scored) this.markScored(id)
    }
  }

  remember(id: string, version: number, answer: Answer): void {
    if (this.#capacity === 0) return
    this.#put(id, version, answer, Date.now())
  }

  get(id: string): RememberedPrediction | undefined {
    const slot = this.#index.get(id)
    return slot === undefined ? undefined : this.#entry(slot)
  }

  /** Feedback was given for `id`: more for it counts as a duplicate. */
  markScored(id: string): void {
    const slot = this.#index.get(id)
    if (slot !== undefined) this.#scored[slot] = true
  }

  #put(id: string, version: number, answer: Answer, at: number): void {
    const again = this.#index.get(id)
    if (again !== undefined) {
      this.#ids[again] = undefined
      this.#answers[again] = undefined
    }
    const slot = this.#next
    const leaving = this.#ids[slot]
    if (leaving !== undefined) this.#index.delete(leaving)
    this.#ids[slot] = id
    this.#versions[slot] = version
    this.#at[slot] = at
    this.#answers[slot] = answer
    this.#scored[slot] = false
    this.#index.set(id, slot)
    this.#next = (slot + 1) % this.#capacity
  }

  #entry(slot: number): RememberedPrediction {
    return {
      version: this.#versions[slot]!,
      at: this.#at[slot]!,
      answer: this.#answers[slot]!,
      scored: this.#scored[slot]!,
    }
  }
}
