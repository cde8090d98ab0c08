import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { StallWatch } from '../../src/http/stall-watch.js'

describe('StallWatch', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('calls a body stalled once the timeout passes with no progress, not before, and only once', () => {
    const stalls = new StallWatch(1000)
    const onStall = vi.fn()
    stalls.watch(onStall)
    vi.advanceTimersByTime(999)
    expect(onStall).not.toHaveBeenCalled()
    // At most one tick (a quarter of the timeout here) late.
    vi.advanceTimersByTime(251)
    expect(onStall).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(5000)
    expect(onStall).toHaveBeenCalledTimes(1)
    expect(stalls.size).toBe(0)
  })

  it('counts the timeout from the last progress', () => {
    const stalls = new StallWatch(1000)
    const onStall = vi.fn()
    const watch = stalls.watch(onStall)
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(900)
      watch.progress()
    }
    expect(onStall).not.toHaveBeenCalled()
    vi.advanceTimersByTime(999)
    expect(onStall).not.toHaveBeenCalled()
    vi.advanceTimersByTime(251)
    expect(onStall).toHaveBeenCalledTimes(1)
  })

  it('forgets a body that ended, and runs no timer while it watches nothing', () => {
    const stalls = new StallWatch(30_000)
    const onStall = vi.fn()
    expect(vi.getTimerCount()).toBe(0)
    const a = stalls.watch(onStall)
    const b = stalls.watch(onStall)
    expect(vi.getTimerCount()).toBe(1) // one timer for every body
    a.end()
    b.end()
    vi.advanceTimersByTime(60_000)
    expect(onStall).not.toHaveBeenCalled()
    expect(vi.getTimerCount()).toBe(0)
  })
})
