/**
 * Lines waiting for their writer, bounded in bytes: a line that does not fit is refused at once
 * (the caller counts it dropped), so a slow disk costs memory up to the bound and never a wait.
 */
export class LineQueue {
  readonly #capacity: number
  #lines: string[] = []
  #sizes: number[] = []
  #bytes = 0

  constructor(capacityBytes: number) {
    this.#capacity = capacityBytes
  }

  /** Bytes queued (UTF-8). */
  get bytes(): number {
    return this.#bytes
  }

  get length(): number {
    return this.#lines.length
  }

  /** The oldest line's size, or 0 when none is queued. */
  get nextBytes(): number {
    return this.#sizes[0] ?? 0
  }

  /** Queues `line` (`bytes` long in UTF-8, newline included); false when it would pass the bound. */
  push(line: string, bytes: number): boolean {
    if (this.#bytes + bytes > this.#capacity) return false
    this.#lines.push(line)
    this.#sizes.push(bytes)
    this.#bytes += bytes
    return true
  }

  /**
   * The oldest lines that fit in `room` bytes together, in order, and their size; at least one
   * line whatever its size, so a line larger than any room still leaves the queue.
   */
  take(room: number): { lines: string[]; bytes: number } {
    let n = 0
    let bytes = 0
    while (n < this.#sizes.length) {
      const next = this.#sizes[n]!
      if (n > 0 && bytes + next > room) break
      bytes += next
      n++
    }
    const lines = this.#lines.splice(0, n)
    this.#sizes.splice(0, n)
    this.#bytes -= bytes
    return { lines, bytes }
  }

  /** Empties the queue; returns how many lines it held. */
  clear(): number {
    const n = this.#lines.length
    this.#lines = []
    this.#sizes = []
    this.#bytes = 0
    return n
  }
}
