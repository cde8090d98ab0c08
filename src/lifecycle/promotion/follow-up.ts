/**
 * "Do it again `delayMs` after each of these moments", with one timer however many moments there
 * are: a request while the timer is pending moves the next run later instead of adding a timer.
 * Every request is followed by a run at least `delayMs` after it; a burst of N requests costs
 * O(1) each and about (burst length / delayMs) + 1 runs.
 */
export class FollowUp {
  readonly #delayMs: number
  readonly #run: () => void
  #timer: NodeJS.Timeout | undefined
  /** The latest moment some request wants a run at. */
  #wantedAt = 0

  constructor(delayMs: number, run: () => void) {
    this.#delayMs = delayMs
    this.#run = run
  }

  request(): void {
    this.#wantedAt = Date.now() + this.#delayMs
    if (this.#timer === undefined) this.#arm()
  }

  cancel(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm(): void {
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        this.#run()
        // Requests made since this timer was armed want a run of their own, later.
        if (this.#wantedAt > Date.now()) this.#arm()
      },
      Math.max(0, this.#wantedAt - Date.now()),
    )
    this.#timer.unref()
  }
}
