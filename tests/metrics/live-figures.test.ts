import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LiveFigures, LiveWindow, quantile } from '../../src/metrics/live-figures.js'

describe('LiveWindow', () => {
  it('has no figure before any sample', () => {
    expect(new LiveWindow().snapshot()).toEqual({
      requests: 0,
      errors: 0,
      errorRate: null,
      p50Ms: null,
      p99Ms: null,
      feedback: 0,
      labels: 0,
      values: 0,
      accuracy: null,
      mae: null,
    })
  })

  it('counts failures as errors and keeps their time out of the latencies', () => {
    const w = new LiveWindow()
    w.recordRequest(true, 10)
    w.recordRequest(false, 500)
    w.recordRequest(true, 20)
    w.recordRequest(false, 0) // a failure in no time is still a failure
    const s = w.snapshot()
    expect(s.requests).toBe(4)
    expect(s.errors).toBe(2)
    expect(s.errorRate).toBe(0.5)
    expect(s.p50Ms).toBe(10)
    expect(s.p99Ms).toBe(20)
  })

  it('counts a success in no time as a latency of 0, not an error', () => {
    const w = new LiveWindow()
    w.recordRequest(true, 0)
    expect(w.snapshot()).toMatchObject({ requests: 1, errors: 0, p50Ms: 0, p99Ms: 0 })
  })

  it('has no latency when every request failed', () => {
    const w = new LiveWindow()
    w.recordRequest(false, 5)
    expect(w.snapshot()).toMatchObject({
      requests: 1,
      errors: 1,
      errorRate: 1,
      p50Ms: null,
      p99Ms: null,
    })
  })

  it('takes p50 and p99 by nearest rank', () => {
    const w = new LiveWindow()
    // 1..100 out of order: the 50th and 99th smallest.
    for (let i = 100; i >= 1; i--) w.recordRequest(true, i)
    expect(w.snapshot()).toMatchObject({ p50Ms: 50, p99Ms: 99 })
    w.recordRequest(true, 101)
    // 101 latencies: ranks ceil(50.5) = 51 and ceil(99.99) = 100.
    expect(w.snapshot()).toMatchObject({ p50Ms: 51, p99Ms: 100 })
  })

  it('keeps only the last `requests` requests once the ring wraps', () => {
    const w = new LiveWindow({ requests: 3, feedback: 3 })
    w.recordRequest(false, 1)
    w.recordRequest(false, 1)
    for (const ms of [7, 8, 9, 10]) w.recordRequest(true, ms)
    // The failures and 7 were overwritten: 8, 9, 10 remain.
    expect(w.snapshot()).toMatchObject({
      requests: 3,
      errors: 0,
      errorRate: 0,
      p50Ms: 9,
      p99Ms: 10,
    })
    w.recordRequest(false, 1)
    expect(w.snapshot()).toMatchObject({ requests: 3, errors: 1, p50Ms: 9, p99Ms: 10 })
  })

  it('gives the figures since a mark: only what was recorded after it, within the window', () => {
    const w = new LiveWindow({ requests: 4, feedback: 4 })
    w.recordRequest(false, 1)
    w.recordLabel(false)
    const mark = w.mark()
    expect(w.snapshot(mark)).toMatchObject({ requests: 0, errors: 0, labels: 0, accuracy: null })
    w.recordRequest(true, 5)
    w.recordRequest(true, 6)
    w.recordLabel(true)
    w.recordValue(2)
    expect(w.snapshot(mark)).toMatchObject({
      requests: 2,
      errors: 0,
      p50Ms: 5,
      p99Ms: 6,
      labels: 1,
      accuracy: 1,
      values: 1,
      mae: 2,
    })
    expect(w.snapshot()).toMatchObject({ requests: 3, errors: 1, labels: 2, accuracy: 0.5 })
    // More than the window holds since the mark: the window is what is left of that period.
    for (const ms of [7, 8, 9]) w.recordRequest(true, ms)
    expect(w.snapshot(mark)).toMatchObject({ requests: 4, errors: 0, p50Ms: 7, p99Ms: 9 })
  })

  it('gives accuracy over labels and mae over values, counted apart', () => {
    const w = new LiveWindow()
    w.recordLabel(true)
    w.recordLabel(false)
    w.recordLabel(true)
    w.recordLabel(true)
    w.recordValue(1)
    w.recordValue(2.5)
    expect(w.snapshot()).toMatchObject({
      feedback: 6,
      labels: 4,
      values: 2,
      accuracy: 0.75,
      mae: 1.75,
    })
    expect(w.feedbackTotal).toBe(6)
  })

  it('has accuracy but no mae with labels only, and the reverse', () => {
    const labels = new LiveWindow()
    labels.recordLabel(false)
    expect(labels.snapshot()).toMatchObject({ accuracy: 0, mae: null, labels: 1, values: 0 })
    const values = new LiveWindow()
    values.recordValue(0)
    expect(values.snapshot()).toMatchObject({ accuracy: null, mae: 0, labels: 0, values: 1 })
  })

  it('keeps only the last `feedback` labels and values, while feedbackTotal counts every item', () => {
    const w = new LiveWindow({ requests: 3, feedback: 2 })
    w.recordLabel(false)
    w.recordLabel(false)
    w.recordLabel(true)
    w.recordLabel(true)
    w.recordLabel(true)
    w.recordValue(100)
    w.recordValue(1)
    w.recordValue(3)
    expect(w.snapshot()).toMatchObject({ feedback: 4, labels: 2, values: 2, accuracy: 1, mae: 2 })
    expect(w.feedbackTotal).toBe(8)
  })
})

describe('quantile', () => {
  it('is null for no values', () => {
    expect(quantile([], 0.5)).toBeNull()
  })

  it('takes the smallest for q = 0 and the largest for q = 1', () => {
    expect(quantile([1, 2, 3], 0)).toBe(1)
    expect(quantile([1, 2, 3], 1)).toBe(3)
  })

  it('rounds the rank up', () => {
    // ceil(0.3 * 4) = 2: nearest rank never rounds down to a value below the quantile.
    expect(quantile([1, 2, 3, 4], 0.3)).toBe(2)
    expect(quantile([1, 2, 3, 4], 0.25)).toBe(1)
  })

  it('is an element of the input with at least ceil(q * n) elements at or below it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ noNaN: true }), { minLength: 1, maxLength: 200 }),
        // Percentiles as well: bare doubles in [0, 1] are mostly 0, 1 or tiny.
        fc.oneof(
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.integer({ min: 0, max: 100 }).map((p) => p / 100),
        ),
        (values, q) => {
          const sorted = [...values].sort((a, b) => a - b)
          const result = quantile(sorted, q)!
          expect(sorted).toContain(result)
          const atOrBelow = sorted.filter((v) => v <= result).length
          expect(atOrBelow).toBeGreaterThanOrEqual(Math.ceil(q * sorted.length))
          // Nearest rank: the smallest such element, so fewer than ceil(q * n) lie strictly below.
          const below = sorted.filter((v) => v < result).length
          expect(below).toBeLessThan(Math.max(1, Math.ceil(q * sorted.length)))
        },
      ),
    )
  })
})

describe('LiveFigures', () => {
  it('makes a version’s window once, with the sizes of its first use', () => {
    const live = new LiveFigures()
    const w = live.window('m', 1, { requests: 2, feedback: 2 })
    expect(live.window('m', 1, { requests: 100, feedback: 100 })).toBe(w)
    expect(live.find('m', 1)).toBe(w)
    for (let i = 0; i < 5; i++) w.recordRequest(true, i)
    expect(w.snapshot().requests).toBe(2)
  })

  it('keeps windows apart by model and version', () => {
    const live = new LiveFigures()
    const a1 = live.window('a', 1)
    expect(live.window('a', 2)).not.toBe(a1)
    expect(live.window('b', 1)).not.toBe(a1)
    expect(live.find('a', 3)).toBeUndefined()
    expect(live.find('c', 1)).toBeUndefined()
  })

  it('restart gives the version a fresh window with the new sizes', () => {
    const live = new LiveFigures()
    const old = live.window('m', 1)
    old.recordRequest(true, 5)
    old.recordLabel(true)
    const fresh = live.restart('m', 1, { requests: 1, feedback: 1 })
    expect(fresh).not.toBe(old)
    expect(live.find('m', 1)).toBe(fresh)
    expect(fresh.snapshot()).toMatchObject({ requests: 0, feedback: 0 })
    expect(fresh.feedbackTotal).toBe(0)
    fresh.recordRequest(true, 1)
    fresh.recordRequest(true, 2)
    expect(fresh.snapshot().requests).toBe(1)
  })

  it('restart makes a window for a version that had none', () => {
    const live = new LiveFigures()
    const w = live.restart('m', 4)
    expect(live.find('m', 4)).toBe(w)
  })

  it('keeps the most recently made `keepPerModel` windows per model', () => {
    const live = new LiveFigures({ keepPerModel: 2 })
    live.window('m', 1)
    live.window('m', 2)
    live.window('other', 1)
    live.window('m', 3)
    expect(live.find('m', 1)).toBeUndefined()
    expect(live.find('m', 2)).toBeDefined()
    expect(live.find('m', 3)).toBeDefined()
    // Another model's windows are counted apart.
    expect(live.find('other', 1)).toBeDefined()
  })

  it('counts a restarted window as newly made, so an older one leaves first', () => {
    const live = new LiveFigures({ keepPerModel: 2 })
    live.window('m', 1)
    live.window('m', 2)
    live.restart('m', 1)
    live.window('m', 3)
    expect(live.find('m', 2)).toBeUndefined()
    expect(live.find('m', 1)).toBeDefined()
    expect(live.find('m', 3)).toBeDefined()
  })

  it('keeps 16 windows per model by default', () => {
    const live = new LiveFigures()
    for (let v = 1; v <= 17; v++) live.window('m', v)
    expect(live.find('m', 1)).toBeUndefined()
    expect(live.find('m', 2)).toBeDefined()
  })

  it('lists every window in entries', () => {
    const live = new LiveFigures()
    const a1 = live.window('a', 1)
    const a2 = live.window('a', 2)
    const b7 = live.window('b', 7)
    expect([...live.entries()]).toEqual([
      { model: 'a', version: 1, window: a1 },
      { model: 'a', version: 2, window: a2 },
      { model: 'b', version: 7, window: b7 },
    ])
    expect([...new LiveFigures().entries()]).toEqual([])
  })
})
