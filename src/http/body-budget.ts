/**
 * The request-body bytes one server holds in memory at once, across every request being received
 * (--max-inflight-body-size). Each body holds a claim; the claim grows as the body arrives (decoded
 * bytes included) and goes back, all of it, when the body is done however it ends. Without this,
 * N clients that each send a body just under --max-body-size and withhold its last byte hold
 * N times that much.
 */
export class BodyBudget {
  readonly capacity: number
  #used = 0

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError(`a body budget needs a positive byte count, got ${capacity}`)
    this.capacity = capacity
  }

  /** Bytes claimed now (the modelgate_inflight_body_bytes gauge). */
  get used(): number {
    return this.#used
  }

  /** A claim of `bytes` up front (a declared Content-Length, or 0), or undefined when that much is not free. */
  claim(bytes: number): BodyClaim | undefined {
    return this.take(bytes) ? new BodyClaim(this, bytes) : undefined
  }

  /** Takes `bytes` if they are free; all or nothing. For BodyClaim. */
  take(bytes: number): boolean {
    if (bytes > this.capacity - this.#used) return false
    this.#used += bytes
    return true
  }

  /** Gives back `bytes` taken earlier. For BodyClaim. */
  give(bytes: number): void {
    this.#used -= bytes
  }
}

/** One body's share of the budget. Released once; a second release gives nothing back twice. */
export class BodyClaim {
  readonly #budget: BodyBudget
  #held: number
  #released = false

  constructor(budget: BodyBudget, held: number) {
    this.#budget = budget
    this.#held = held
  }

  get held(): number {
    return this.#held
  }

  /**
   * Holds at least `total` bytes, taking the difference from the budget; false when the budget
   * cannot cover it (the claim keeps what it held: the caller refuses the body and releases it).
   */
  cover(total: number): boolean {
    if (total <= this.#held) return true
    if (this.#released || !this.#budget.take(total - this.#held)) return false
    this.#held = total
    return true
  }

  release(): void {
    if (this.#released) return
    this.#released = true
    this.#budget.give(this.#held)
    this.#held = 0
  }
}
