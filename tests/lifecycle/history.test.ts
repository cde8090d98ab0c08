import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  History,
  KEEP_PER_MODEL,
  HISTORY_FILE,
  type HistoryEntry,
} from '../../src/lifecycle/state/history.js'
import { createMemoryLogger } from '../../src/log.js'
import { mountSmallDisk, smallDiskUnavailable } from '../support/tmpfs.js'

/** history.jsonl: append-only, one JSON line per event, survives a torn last line. */

let dir: string
beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'modelgate-history-')), '.modelgate')
})
afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }))

const path = () => join(dir, HISTORY_FILE)

async function lines(): Promise<string[]> {
  return (await readFile(path(), 'utf8')).split('\n')
}

function entry(
  model: string,
  version: number,
  event: HistoryEntry['event'] = 'promoted',
): Omit<HistoryEntry, 'time'> {
  return { model, version, event, trigger: 'watch' }
}

describe('History', () => {
  it('starts empty without a file', async () => {
    const h = new History(dir)
    expect(await h.load()).toBe(0)
    expect(h.recent('iris', 10)).toEqual([])
  })

  it('appends one JSON line per entry, with a time, and keeps them in memory', async () => {
    const h = new History(dir)
    await h.load()
    const before = Date.now()
    await h.append({ ...entry('iris', 1), sha256: 'a'.repeat(64) })
    await h.append({
      ...entry('iris', 2, 'rejected'),
      reason: 'expect_mismatch',
      stages: [{ stage: 'smoke', status: 'failed', ms: 1, reason: 'expect_mismatch' }],
    })
    const text = await lines()
    expect(text.at(-1)).toBe('')
    const parsed = text.filter(Boolean).map((l) => JSON.parse(l) as HistoryEntry)
    expect(parsed.map((e) => [e.version, e.event])).toEqual([
      [1, 'promoted'],
      [2, 'rejected'],
    ])
    expect(Date.parse(parsed[0]!.time)).toBeGreaterThanOrEqual(before - 1000)
    expect(parsed[1]!.stages?.[0]).toMatchObject({ stage: 'smoke', status: 'failed' })
    expect(h.recent('iris', 10)).toEqual(parsed)
  })

  it('gives the most recent entries of one model, oldest first, up to the limit', async () => {
    const h = new History(dir)
    await h.load()
    for (let v = 1; v <= 5; v++) await h.append(entry('iris', v))
    await h.append(entry('other', 1))
    expect(h.recent('iris', 3).map((e) => e.version)).toEqual([3, 4, 5])
    expect(h.recent('iris', 100).map((e) => e.version)).toEqual([1, 2, 3, 4, 5])
    expect(h.recent('other', 100).map((e) => e.version)).toEqual([1])
    expect(h.recent('nobody', 100)).toEqual([])
  })

  it('keeps the order of appends that were not awaited one by one', async () => {
    const h = new History(dir)
    await h.load()
    await Promise.all(Array.from({ length: 30 }, (_, i) => h.append(entry('iris', i + 1))))
    await h.flush()
    const versions = (await lines())
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as HistoryEntry).version)
    expect(versions).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
  })

  it('reads back what an earlier run recorded', async () => {
    const first = new History(dir)
    await first.load()
    for (let v = 1; v <= 3; v++) await first.append(entry('iris', v))
    const second = new History(dir)
    expect(await second.load()).toBe(0)
    expect(second.recent('iris', 10)).toEqual(first.recent('iris', 10))
  })

  it('skips a last line torn by a crash, and the next append starts on a new line', async () => {
    const first = new History(dir)
    await first.load()
    await first.append(entry('iris', 1))
    await first.append(entry('iris', 2))
    await appendFile(path(), '{"time":"2024-01-01T00:00:00.000Z","model":"iris","vers')

    const second = new History(dir)
    expect(await second.load()).toBe(1)
    expect(second.recent('iris', 10).map((e) => e.version)).toEqual([1, 2])
    await second.append(entry('iris', 3))

    const text = await lines()
    // Every line but the torn one parses, and the new entry has a line of its own.
    const parsedVersions = text.filter(Boolean).flatMap((l) => {
      try {
        return [(JSON.parse(l) as HistoryEntry).version]
      } catch {
        return []
      }
    })
    expect(parsedVersions).toEqual([1, 2, 3])
    expect(text.filter(Boolean)).toHaveLength(4)

    const third = new History(dir)
    expect(await third.load()).toBe(1)
    expect(third.recent('iris', 10).map((e) => e.version)).toEqual([1, 2, 3])
  })

  it('skips lines that are JSON but not entries', async () => {
    const h = new History(dir)
    await h.load()
    await h.append(entry('iris', 1))
    await appendFile(path(), '[1,2,3]\n{"model": 5}\nnull\n')
    const again = new History(dir)
    expect(await again.load()).toBe(3)
    expect(again.recent('iris', 10).map((e) => e.version)).toEqual([1])
  })

  it('keeps the last KEEP_PER_MODEL entries of a model from a long file in memory', async () => {
    await new History(dir).load()
    const text = Array.from({ length: 2500 }, (_, i) =>
      JSON.stringify({ time: 't', model: 'iris', version: i + 1, event: 'promoted' }),
    ).join('\n')
    await writeFile(path(), `${text}\n`)
    const h = new History(dir)
    await h.load()
    const recent = h.recent('iris', KEEP_PER_MODEL)
    expect(recent).toHaveLength(KEEP_PER_MODEL)
    expect(recent.at(-1)!.version).toBe(2500)
    expect(recent[0]!.version).toBe(2500 - KEEP_PER_MODEL + 1)
  })
})

describe('History when the disk fails', () => {
  it('makes its folder again when it was deleted', async () => {
    const h = new History(dir)
    await h.load()
    await rm(dir, { recursive: true, force: true })
    await h.append(entry('iris', 1))
    expect((await lines()).filter(Boolean).map((l) => JSON.parse(l).version)).toEqual([1])
  })

  it.skipIf(smallDiskUnavailable !== undefined)(
    `a line cut short by a full disk is not left torn, and the next one, once there is room, is whole${smallDiskUnavailable ? ` (skipped: ${smallDiskUnavailable})` : ''}`,
    async () => {
      const disk = mountSmallDisk()
      try {
        const logger = createMemoryLogger()
        const h = new History(disk.dir, logger)
        await h.load()
        await h.append(entry('iris', 1))
        await disk.fill()
        // Longer than the room left in the file's last page: part of it is written, then ENOSPC.
        await h.append({ ...entry('iris', 2), message: 'x'.repeat(3 * 4096) })
        expect(logger.records.filter((r) => r.event === 'history_write_failed')).toHaveLength(1)
        await disk.unfill()
        await h.append(entry('iris', 3))
        const text = await readFile(join(disk.dir, HISTORY_FILE), 'utf8')
        expect(
          text
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l).version),
        ).toEqual([1, 3])
        const again = new History(disk.dir)
        expect(await again.load()).toBe(0)
        expect(again.recent('iris', 10).map((e) => e.version)).toEqual([1, 3])
      } finally {
        disk.unmount()
      }
    },
  )
})
