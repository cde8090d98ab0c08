import { randomFill } from 'node:crypto'
import type { Logger } from './log.js'

export type Liveness =
  | { readonly live: true }
  | { readonly live: false; readonly stalledMs: number }

export interface ThreadpoolProbeOptions {
  /** A probe job waiting longer than this means the pool is stuck. */
  readonly stallMs: number
  readonly logger: Logger
}

/**
 * Watches the libuv threadpool. Every file system call, zlib (gzip answers and request bodies)
 * and async crypto call of the process needs one of its threads (4 by default); threads stuck for
 * good (a blocking open of a FIFO, a hung network file system) wedge all of that while the event
 * loop, and so a plain /healthz, answers on. A tiny job is queued again and again; one that has
 * waited longer than `stallMs` makes liveness fail, so the orchestrator restarts the process.
 * The job is crypto, not a stat: the probe itself never waits on a disk, and never holds a thread.
 */
export class ThreadpoolProbe {
  readonly #stallMs: number
  readonly #logger: Logger
  readonly #timer: NodeJS.Timeout
  readonly #scratch = Buffer.alloc(1)
  /** When the job in flight was queued; undefined when none is. */
  #queuedAt: number | undefined
  #stalled = false

  constructor(o: ThreadpoolProbeOptions) {
    this.#stallMs = o.stallMs
    this.#logger = o.logger
    // Several probes per threshold, so a stall is seen soon after it passes the threshold.
    this.#timer = setInterval(() => this.#tick(), Math.max(25, Math.min(1000, o.stallMs / 4)))
    this.#timer.unref()
    this.#tick()
  }

  /**
   * Never waits on the pool: only looks at how long the job in flight has been waiting. The first
   * look that finds a stall logs it, whoever looks (a /healthz request or the timer), so the log
   * says so before any answer does.
   */
  check(nowMs = performance.now()): Liveness {
    const queuedAt = this.#queuedAt
    if (queuedAt === undefined || nowMs - queuedAt <= this.#stallMs) return { live: true }
    const stalledMs = nowMs - queuedAt
    if (!this.#stalled) {
      this.#stalled = true
      this.#logger.error('threadpool_stalled', {
        stalledMs: Math.round(stalledMs),
        thresholdMs: this.#stallMs,
      })
    }
    return { live: false, stalledMs }
  }

  close(): void {
    clearInterval(this.#timer)
  }

  #tick(): void {
    this.check()
    if (this.#queuedAt !== undefined) return // one job at a time: a stuck pool is not fed more
    const queuedAt = performance.now()
    this.#queuedAt = queuedAt
    randomFill(this.#scratch, () => {
      this.#queuedAt = undefined
      if (this.#stalled) {
        this.#stalled = false
        this.#logger.warn('threadpool_recovered', {
          stalledMs: Math.round(performance.now() - queuedAt),
        })
      }
    })
  }
}
