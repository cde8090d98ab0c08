import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { coalesced } from '../../src/lifecycle/coalesced.js'
import { FollowUp } from '../../src/lifecycle/promotion/follow-up.js'

/** The two ways a burst of file-system events stays O(1) per event. */

describe('coalesced', () => {
  it('runs one at a time; calls while a run waits join it, and each is answered by a run that started after it', async () => {
    const started: number[] = []
    const releases: (() => void)[] = []
    let calls = 0
    const run = coalesced(async () => {
      started.push(calls)
      await new Promise<void>((resolve) => releases.push(resolve))
    })
    calls++
    const first = run()
    await Promise.resolve()
    // While the first run is in progress, a thousand calls queue exactly one more run.
    const joined = Array.from({ length: 1000 }, () => {
      calls++
      return run()
    })
    expect(new Set(joined).size).toBe(1)
    releases.shift()!()
    await first
    await vi.waitFor(() => expect(releases).toHaveLength(1))
    releases.shift()!()
    await joined[0]
    expect(started).toEqual([1, 1001]) // the second run started after every call it answers
  })

  it('a failed run fails its callers only; the next run goes ahead', async () => {
    let n = 0
    const run = coalesced(async () => {
      if (++n === 1) throw new Error('first fails')
    })
    await expect(run()).rejects.toThrow('first fails')
    await expect(run()).resolves.toBeUndefined()
    expect(n).toBe(2)
  })
})

describe('FollowUp', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('one timer for any number of requests, and a run at least the delay after each request', () => {
    const runs: number[] = []
    const f = new FollowUp(300, () => runs.push(Date.now()))
    const t0 = Date.now()
    for (let i = 0; i < 1000; i++) f.request()
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(299)
    expect(runs).toEqual([])
    vi.advanceTimersByTime(1)
    expect(runs).toEqual([t0 + 300])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('requests while the timer is pending get a later run of their own', () => {
    const runs: number[] = []
    const f = new FollowUp(300, () => runs.push(Date.now()))
    const t0 = Date.now()
    f.request()
    vi.advanceTimersByTime(200)
    f.request() // wants a run at t0 + 500
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(1000)
    expect(runs).toEqual([t0 + 300, t0 + 500])
  })

  it('cancel drops the pending run', () => {
    const run = vi.fn()
    const f = new FollowUp(300, run)
    f.request()
    f.cancel()
    vi.advanceTimersByTime(1000)
    expect(run).not.toHaveBeenCalled()
  })
})
