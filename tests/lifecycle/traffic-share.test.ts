import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fnv1a, inShare } from '../../src/lifecycle/versions/traffic-share.js'

describe('inShare', () => {
  it('puts a sticky key on the same side every time', () => {
    fc.assert(
      fc.property(fc.string(), fc.double({ min: 0, max: 100, noNaN: true }), (key, percent) => {
        expect(inShare(key, percent)).toBe(inShare(key, percent))
      }),
    )
  })

  it('keeps every key already in the share when the share grows', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (key, a, b) => {
          const [low, high] = a <= b ? [a, b] : [b, a]
          if (inShare(key, low)) expect(inShare(key, high)).toBe(true)
        },
      ),
    )
  })

  it('takes none at 0% and all at 100%, with a key or without', () => {
    for (const key of [undefined, 'a', 'user-42', '']) {
      expect(inShare(key, 0)).toBe(false)
      expect(inShare(key, 100)).toBe(true)
    }
  })

  it('spreads short ids evenly: 10 000 ids at 25% give a quarter, within 5 standard deviations', () => {
    let n = 0
    for (let i = 0; i < 10_000; i++) if (inShare(`user-${i}`, 25)) n++
    const sd = Math.sqrt(10_000 * 0.25 * 0.75)
    expect(Math.abs(n - 2500)).toBeLessThan(5 * sd)
  })
})

describe('fnv1a', () => {
  it('matches the published FNV-1a 32-bit values', () => {
    // From the FNV reference test vectors (ASCII strings).
    expect(fnv1a('')).toBe(0x811c9dc5)
    expect(fnv1a('a')).toBe(0xe40c292c)
    expect(fnv1a('foobar')).toBe(0xbf9cf968)
  })
})
