/**
 * The arithmetic of a model's payload files: how large a file grows before the next one starts,
 * what the files are called, and which of the oldest go so the folder stays within its bound.
 */

/** A file of a model's payload log, as its writer knows it. */
export interface Segment {
  readonly name: string
  bytes: number
}

/** Smallest file started: a tiny bound still gets files of a useful size (a disk block or more). */
const MIN_SEGMENT_BYTES = 4096
/** Largest file started: a retraining job reads a large log a file at a time. */
const MAX_SEGMENT_BYTES = 64 * 1024 * 1024

/**
 * How large a file may grow: a tenth of the bound, so removing the oldest file gives up a tenth of
 * the log, not half of it; never more than half the bound, so two files always fit.
 */
export function segmentBytes(maxBytes: number): number {
  const tenth = Math.floor(maxBytes / 10)
  const clamped = Math.min(Math.max(tenth, MIN_SEGMENT_BYTES), MAX_SEGMENT_BYTES)
  return Math.max(1, Math.min(clamped, Math.floor(maxBytes / 2)))
}

const SEGMENT_NAME = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z-\d{6}(-[0-9a-f]{6})?\.jsonl$/

/**
 * `2026-12-03T10-41-07-120Z-000001-3fa2c9.jsonl`: UTC time (no colons, which some file systems
 * refuse) and a sequence number, so names sort in the order the files were started, then the
 * writer's own tag: replicas sharing the state directory each write files of their own, never one
 * file together (two starting a file in the same millisecond would interleave their lines).
 */
export function segmentName(time: Date, seq: number, writer: string): string {
  return `${time.toISOString().replaceAll(':', '-').replace('.', '-')}-${String(seq % 1_000_000).padStart(6, '0')}-${writer}.jsonl`
}

/** Whether a file in a payload folder is one of ours: anything else there is never removed. */
export function isSegmentName(name: string): boolean {
  return SEGMENT_NAME.test(name)
}

/**
 * How many of the oldest segments (`segments` oldest first, the last one being written) must go
 * before `incoming` more bytes are appended, so the folder stays within `maxBytes`. The file being
 * written is never removed.
 */
export function segmentsToRemove(
  segments: readonly Segment[],
  incoming: number,
  maxBytes: number,
): number {
  let total = incoming
  for (const s of segments) total += s.bytes
  let n = 0
  while (total > maxBytes && n < segments.length - 1) {
    total -= segments[n]!.bytes
    n++
  }
  return n
}
