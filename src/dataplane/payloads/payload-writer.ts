import { randomBytes } from 'node:crypto'
import { appendFile, mkdir, readdir, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../log.js'
import { LineQueue } from './line-queue.js'
import {
  isSegmentName,
  type Segment,
  segmentBytes,
  segmentName,
  segmentsToRemove,
} from './segments.js'

/** What becomes of each line, as `modelgate_payload_log_lines_total` counts it. */
export interface LineCounters {
  readonly written: { inc(n: number): void }
  /** Refused: the queue was full, the line larger than a file may be, or the log closed. */
  readonly dropped: { inc(n: number): void }
  /** Lost to a failed write (a full disk, a folder that cannot be made). */
  readonly failed: { inc(n: number): void }
}

/** Bytes of lines one model may have waiting for the disk; past it, lines are dropped. */
const QUEUE_BYTES = 8 * 1024 * 1024

/**
 * One model's payload folder and the one writer that appends to it: lines are queued on the
 * request path and appended in batches, a file at a time, the oldest files removed so the folder
 * stays within `maxBytes`. Nothing here ever throws to, or waits in, the request that logged.
 */
export class PayloadWriter {
  readonly #dir: string
  readonly #model: string
  readonly #counters: LineCounters
  readonly #logger: Logger
  readonly #queue = new LineQueue(QUEUE_BYTES)
  #maxBytes = 0
  /** Our files in the folder, oldest first; undefined until listed (again after a failure). */
  #segments: Segment[] | undefined
  /** The last of #segments is appended to; false until this writer started one (never append to a file of an earlier run, which may end in a torn line). */
  #appending = false
  #seq = 0
  /** This writer's tag in its files' names (segmentName). */
  readonly #tag = randomBytes(3).toString('hex')
  #draining: Promise<void> | undefined
  /** Since when writes fail: logged once per episode. */
  #failingSince: string | undefined
  #closed = false

  constructor(dir: string, model: string, counters: LineCounters, logger: Logger) {
    this.#dir = dir
    this.#model = model
    this.#counters = counters
    this.#logger = logger
  }

  /** Queues one line (no newline) for a folder bounded by `maxBytes` (model.json's, as it is now). */
  add(line: string, maxBytes: number): void {
    const text = `${line}\n`
    const bytes = Buffer.byteLength(text)
    this.#maxBytes = maxBytes
    if (this.#closed || bytes > segmentBytes(maxBytes) || !this.#queue.push(text, bytes)) {
      this.#counters.dropped.inc(1)
      return
    }
    // #drain awaits before it can end, so it is assigned before it clears itself.
    this.#draining ??= this.#drain()
  }

  /** Stops taking lines and settles when the queued ones are on disk (or lost to a failure). */
  async close(): Promise<void> {
    this.#closed = true
    await this.#draining
  }

  /** Lines still queued (after a close that ran out of time: abandoned). */
  get queued(): number {
    return this.#queue.length
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      let segments: Segment[]
      try {
        segments = await this.#listed()
      } catch (e) {
        // No folder to write to: what waits is lost; the next line tries again.
        this.#failed(e, this.#queue.clear())
        break
      }
      const { current, lines, bytes } = this.#nextBatch(segments)
      try {
        for (const old of segments.splice(0, segmentsToRemove(segments, bytes, this.#maxBytes)))
          await removeFile(join(this.#dir, old.name))
        await appendFile(join(this.#dir, current.name), lines.join(''))
      } catch (e) {
        // Written or not, the batch is not retried, and the next one starts a new file in a
        // listing made afresh: this one may end in part of a line, or be gone.
        this.#segments = undefined
        this.#appending = false
        this.#failed(e, lines.length)
        continue
      }
      current.bytes += bytes
      this.#counters.written.inc(lines.length)
      if (this.#failingSince !== undefined) {
        this.#logger.info('payload_log_write_recovered', {
          model: this.#model,
          since: this.#failingSince,
        })
        this.#failingSince = undefined
      }
    }
    // In the same step as the check that found the queue empty: a line queued from now on
    // starts a new drain, none waits behind one that has ended.
    this.#draining = undefined
  }

  /** The oldest queued lines that fit in the current file, or in a new one (then last in `segments`). */
  #nextBatch(segments: Segment[]): { current: Segment; lines: string[]; bytes: number } {
    const limit = segmentBytes(this.#maxBytes)
    let current = this.#appending ? segments.at(-1) : undefined
    if (!current || current.bytes + this.#queue.nextBytes > limit) {
      current = { name: this.#nextName(segments), bytes: 0 }
      segments.push(current)
      this.#appending = true
    }
    return { current, ...this.#queue.take(limit - current.bytes) }
  }

  #failed(e: unknown, lines: number): void {
    this.#counters.failed.inc(lines)
    if (this.#failingSince !== undefined) return
    this.#failingSince = new Date().toISOString()
    this.#logger.error('payload_log_write_failed', { model: this.#model, dir: this.#dir, error: e })
  }

  /** The folder's files of ours, oldest first: listed once, and again after a failure. */
  async #listed(): Promise<Segment[]> {
    if (this.#segments) return this.#segments
    await mkdir(this.#dir, { recursive: true })
    const names = (await readdir(this.#dir)).filter(isSegmentName).sort()
    const segments: Segment[] = []
    for (const name of names) {
      const s = await stat(join(this.#dir, name)).catch(() => undefined)
      if (s?.isFile()) segments.push({ name, bytes: s.size })
    }
    this.#segments = segments
    return segments
  }

  /** A new file's name, never one the folder already has (two files started in one millisecond). */
  #nextName(segments: readonly Segment[]): string {
    const taken = new Set(segments.map((s) => s.name))
    let name: string
    do name = segmentName(new Date(), this.#seq++, this.#tag)
    while (taken.has(name))
    return name
  }
}

/** Removes a file; one already gone is removed. */
async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
}
