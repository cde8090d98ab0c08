/**
 * Notices request bodies that stopped arriving (--body-timeout). One interval timer serves every
 * body a server is receiving, and runs only while there is one: a body costs a Set entry and a
 * counter reset per chunk, not a timer of its own (the prediction fast path stays fast).
 *
 * A body is stalled once `timeoutMs` has passed with no chunk: the sweep counts ticks since the
 * last chunk, and one tick more than the timeout spans, so a body is never cut before its time
 * (at most one tick after it).
 */
export class StallWatch {
  readonly timeoutMs: number
  readonly #tickMs: number
  readonly #ticksAllowed: number
  readonly #watched = new Set<Watch>()
  #timer: NodeJS.Timeout | undefined

  constructor(timeoutMs: number) {
    if (!(timeoutMs > 0)) throw new RangeError(`a stall timeout must be positive, got ${timeoutMs}`)
    this.timeoutMs = timeoutMs
    // At most a second late, and a few ticks per timeout for short ones (tests use 1 s).
    this.#tickMs = Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4)))
    this.#ticksAllowed = Math.ceil(timeoutMs / this.#tickMs) + 1
  }

  /** Bodies being watched now. */
  get size(): number {
    return this.#watched.size
  }

  /** Watches one body; `onStall` runs once if it stalls, after which the watch is over. */
  watch(onStall: () => void): Watch {
    const w = new Watch(this.#watched, onStall)
    this.#watched.add(w)
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), this.#tickMs)
      // Never what keeps a process alive: the bodies' sockets do that.
      this.#timer.unref()
    }
    return w
  }

  #sweep(): void {
    for (const w of this.#watched) {
      if (++w.idleTicks < this.#ticksAllowed) continue
      w.end()
      w.onStall()
    }
    if (this.#watched.size === 0) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }
}

/** One watched body: `progress()` on every chunk, `end()` when it is done, however it ends. */
export class Watch {
  /** Sweeps since the last chunk. */
  idleTicks = 0
  readonly #set: Set<Watch>

  constructor(
    set: Set<Watch>,
    readonly onStall: () => void,
  ) {
    this.#set = set
  }

  progress(): void {
    this.idleTicks = 0
  }

  end(): void {
    this.#set.delete(this)
  }
}
