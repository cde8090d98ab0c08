import { describe, expect, it } from 'vitest'
import { LiveFigures } from '../../src/metrics/live-figures.js'
import { RequestRates } from '../../src/metrics/request-rates.js'

describe('RequestRates', () => {
  function setup() {
    let now = 0
    const live = new LiveFigures()
    const rates = new RequestRates(live, { now: () => now })
    const tick = (requests: number) => {
      const w = live.window('m', 1)
      for (let i = 0; i < requests; i++) w.recordRequest(true, 1)
      now += 1000
      rates.sample()
    }
    return { live, rates, tick, window: () => live.find('m', 1) }
  }

  it('has no rate before two samples, then requests per second over the last ten seconds', () => {
    const { rates, tick, window } = setup()
    tick(0)
    expect(rates.perSecond(window())).toBeNull()
    for (let s = 0; s < 20; s++) tick(s < 10 ? 5 : 20)
    // The last ten seconds had 20 requests each.
    expect(rates.perSecond(window())).toBe(20)
    expect(rates.lastMinute(window()).slice(-3)).toEqual([20, 20, 20])
  })

  it('keeps a minute, and counts from zero again in the window a promotion starts', () => {
    const { live, rates, tick, window } = setup()
    for (let s = 0; s < 90; s++) tick(3)
    expect(rates.lastMinute(window())).toHaveLength(60)
    live.restart('m', 1)
    expect(rates.perSecond(window())).toBeNull()
    // Made since the last sample: its first requests count from that sample on.
    tick(4)
    expect(rates.perSecond(window())).toBe(4)
  })
})
