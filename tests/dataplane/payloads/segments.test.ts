import { describe, expect, it } from 'vitest'
import { LineQueue } from '../../../src/dataplane/payloads/line-queue.js'
import {
  isSegmentName,
  segmentBytes,
  segmentName,
  segmentsToRemove,
} from '../../../src/dataplane/payloads/segments.js'

const MB = 1024 * 1024

describe('payload files', () => {
  it('grow to a tenth of the bound, at least 4 KiB, at most 64 MiB, and never past half the bound', () => {
    expect(segmentBytes(100 * MB)).toBe(Math.floor((100 * MB) / 10))
    expect(segmentBytes(0.01 * MB)).toBe(4096)
    expect(segmentBytes(6000)).toBe(3000)
    expect(segmentBytes(1_000_000 * MB)).toBe(64 * MB)
    expect(segmentBytes(1)).toBe(1)
  })

  it("are named by UTC time, a sequence number and the writer's tag, sorting in the order they were started", () => {
    const t = new Date('2026-12-03T10:41:07.120Z')
    expect(segmentName(t, 1, '3fa2c9')).toBe('2026-12-03T10-41-07-120Z-000001-3fa2c9.jsonl')
    expect(isSegmentName(segmentName(t, 1, '3fa2c9'))).toBe(true)
    // Two replicas starting a file in the same millisecond: two files.
    expect(segmentName(t, 1, '000001')).not.toBe(segmentName(t, 1, '3fa2c9'))
    const names = [
      segmentName(new Date('2026-12-03T10:41:08.000Z'), 0, 'ffffff'),
      segmentName(t, 2, 'ffffff'),
      segmentName(t, 10, '000000'),
    ]
    expect([...names].sort()).toEqual([names[1], names[2], names[0]])
    // Files written before writers had tags are still the log's.
    expect(isSegmentName('2026-12-03T10-41-07-120Z-000001.jsonl')).toBe(true)
    for (const other of ['notes.jsonl', 'history.jsonl', '2026-12-03T10-41-07-120Z-1.jsonl'])
      expect(isSegmentName(other)).toBe(false)
  })

  it('go oldest first until what is appended fits, never the file being written', () => {
    const files = (...sizes: number[]) => sizes.map((bytes, i) => ({ name: String(i), bytes }))
    expect(segmentsToRemove(files(400, 400, 100), 50, 1000)).toBe(0)
    expect(segmentsToRemove(files(400, 400, 100), 101, 1000)).toBe(1)
    expect(segmentsToRemove(files(400, 400, 100), 600, 1000)).toBe(2)
    // Only the current file left: nothing more to remove, even past the bound.
    expect(segmentsToRemove(files(400, 400, 0), 2000, 1000)).toBe(2)
    expect(segmentsToRemove(files(0), 10, 1000)).toBe(0)
  })
})

describe('LineQueue', () => {
  it('refuses a line that would pass its bound, and takes one again once room is made', () => {
    const q = new LineQueue(10)
    expect(q.push('aaaa', 4)).toBe(true)
    expect(q.push('bbbb', 4)).toBe(true)
    expect(q.push('ccc', 3)).toBe(false)
    expect(q.push('cc', 2)).toBe(true)
    expect(q.bytes).toBe(10)
    expect(q.take(4)).toEqual({ lines: ['aaaa'], bytes: 4 })
    expect(q.push('ccc', 3)).toBe(true)
    expect(q.length).toBe(3)
  })

  it('takes the oldest lines that fit the room, in order, and at least one', () => {
    const q = new LineQueue(100)
    for (const [line, bytes] of [
      ['a', 5],
      ['b', 5],
      ['c', 5],
    ] as const)
      q.push(line, bytes)
    expect(q.take(11)).toEqual({ lines: ['a', 'b'], bytes: 10 })
    expect(q.nextBytes).toBe(5)
    expect(q.take(1)).toEqual({ lines: ['c'], bytes: 5 })
    expect(q.take(100)).toEqual({ lines: [], bytes: 0 })
    expect(q.nextBytes).toBe(0)
  })

  it('clears, saying how many lines it held', () => {
    const q = new LineQueue(100)
    q.push('a', 1)
    q.push('b', 1)
    expect(q.clear()).toBe(2)
    expect(q.bytes).toBe(0)
    expect(q.length).toBe(0)
  })
})
