import { describe, expect, it } from 'vitest'
import { fromFloat16Bits, toFloat16Bits } from '../../src/runtime/float16.js'

const hex = (bits: number) => `0x${bits.toString(16).padStart(4, '0')}`
const isNaNBits = (bits: number) => (bits & 0x7c00) === 0x7c00 && (bits & 0x03ff) !== 0

/**
 * An independent oracle: the nearest half by binary search over the ordered finite halves
 * (0x0000..0x7bff increase with their value), ties to the even bit pattern. 65520, halfway between
 * 65504 and the next power of two, rounds to Infinity as IEEE 754 says.
 */
function referenceBits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0
  const a = Math.abs(x)
  if (a >= 65520) return sign | 0x7c00
  let lo = 0
  let hi = 0x7bff
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (fromFloat16Bits(mid) <= a) lo = mid
    else hi = mid - 1
  }
  const below = fromFloat16Bits(lo)
  if (below === a) return sign | lo
  const above = lo === 0x7bff ? 65536 : fromFloat16Bits(lo + 1)
  const dBelow = a - below
  const dAbove = above - a
  const bits = dBelow < dAbove ? lo : dAbove < dBelow ? lo + 1 : lo % 2 === 0 ? lo : lo + 1
  return sign | bits
}

/** A small deterministic PRNG (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('fromFloat16Bits', () => {
  it.each([
    [0x0000, 0],
    [0x3c00, 1],
    [0xc000, -2],
    [0x3800, 0.5],
    [0x3555, 0.333251953125],
    [0x7bff, 65504],
    [0xfbff, -65504],
    [0x0400, 2 ** -14],
    [0x03ff, 1023 * 2 ** -24],
    [0x0001, 2 ** -24],
    [0x8001, -(2 ** -24)],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ])('%i is %d', (bits, value) => {
    expect(fromFloat16Bits(bits)).toBe(value)
  })

  it('gives -0 for 0x8000 and NaN for every NaN pattern', () => {
    expect(Object.is(fromFloat16Bits(0x8000), -0)).toBe(true)
    for (const bits of [0x7c01, 0x7e00, 0x7fff, 0xfc01, 0xfe00, 0xffff])
      expect(fromFloat16Bits(bits)).toBeNaN()
  })
})

describe('toFloat16Bits', () => {
  it('round-trips all 65536 bit patterns, NaN payloads becoming the one quiet NaN', () => {
    const wrong: string[] = []
    for (let bits = 0; bits <= 0xffff; bits++) {
      const back = toFloat16Bits(fromFloat16Bits(bits))
      const want = isNaNBits(bits) ? 0x7e00 : bits
      if (back !== want) wrong.push(`${hex(bits)} -> ${hex(back)}`)
    }
    expect(wrong).toEqual([])
  })

  it('rounds half to even', () => {
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00) // halfway between 1 and the next half: stays on even 1
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02) // halfway above an odd mantissa: goes up to even
    expect(toFloat16Bits(2049)).toBe(0x6800) // 2048 (even) and 2050
    expect(toFloat16Bits(2051)).toBe(0x6802) // 2050 (odd) and 2052
    expect(toFloat16Bits(-(1 + 2 ** -11))).toBe(0xbc00)
    expect(toFloat16Bits(1 + 2 ** -11 + 2 ** -30)).toBe(0x3c01) // just above halfway: up
    expect(toFloat16Bits(1 + 2 ** -11 - 2 ** -30)).toBe(0x3c00) // just below halfway: down
  })

  it('rounds once, straight from the double (never via float32)', () => {
    // Via float32 this would first become exactly 1 + 2^-11 (a tie) and then round down to 1.
    const x = 1 + 2 ** -11 + 2 ** -40
    expect(Math.fround(x)).toBe(1 + 2 ** -11)
    expect(toFloat16Bits(x)).toBe(0x3c01)
  })

  it('overflows to Infinity from 65520 on, and keeps 65504 below it', () => {
    expect(toFloat16Bits(65504)).toBe(0x7bff)
    expect(toFloat16Bits(65519.99)).toBe(0x7bff)
    expect(toFloat16Bits(65520)).toBe(0x7c00)
    expect(toFloat16Bits(-65520)).toBe(0xfc00)
    expect(toFloat16Bits(1e6)).toBe(0x7c00)
    expect(toFloat16Bits(Number.MAX_VALUE)).toBe(0x7c00)
    expect(toFloat16Bits(Infinity)).toBe(0x7c00)
    expect(toFloat16Bits(-Infinity)).toBe(0xfc00)
  })

  it('handles subnormals, their rounding, and the step into the normals', () => {
    expect(toFloat16Bits(2 ** -24)).toBe(0x0001)
    expect(toFloat16Bits(2 ** -25)).toBe(0x0000) // tie between 0 and the smallest subnormal: even 0
    expect(toFloat16Bits(2 ** -25 + 2 ** -40)).toBe(0x0001)
    expect(toFloat16Bits(3 * 2 ** -25)).toBe(0x0002) // tie between 1 and 2 (x 2^-24): even 2
    expect(toFloat16Bits(1023 * 2 ** -24)).toBe(0x03ff)
    expect(toFloat16Bits(1023.5 * 2 ** -24)).toBe(0x0400) // tie: rounds up into the smallest normal
    expect(toFloat16Bits(2 ** -14)).toBe(0x0400)
    expect(toFloat16Bits(-3 * 2 ** -24)).toBe(0x8003)
    expect(toFloat16Bits(1e-10)).toBe(0x0000)
    expect(toFloat16Bits(-1e-10)).toBe(0x8000) // underflow keeps the sign
    expect(toFloat16Bits(Number.MIN_VALUE)).toBe(0x0000)
  })

  it('keeps the sign of zero and quiets NaN', () => {
    expect(toFloat16Bits(0)).toBe(0x0000)
    expect(toFloat16Bits(-0)).toBe(0x8000)
    expect(toFloat16Bits(NaN)).toBe(0x7e00)
  })

  it('agrees with a nearest-value search on exact halfway points and on random doubles', () => {
    const next = random(20240601)
    const wrong: string[] = []
    const check = (x: number) => {
      const got = toFloat16Bits(x)
      const want = referenceBits(x)
      if (got !== want && wrong.length < 10) wrong.push(`${x}: ${hex(got)}, expected ${hex(want)}`)
    }
    for (let bits = 0; bits < 0x7bff; bits++) {
      const mid = (fromFloat16Bits(bits) + fromFloat16Bits(bits + 1)) / 2 // exact in a double
      check(mid)
      check(-mid)
    }
    for (let i = 0; i < 50_000; i++) {
      const exponent = Math.floor(next() * 50) - 30 // 2^-30 .. 2^19: subnormals to overflow
      check((next() * 2 - 1) * 2 ** exponent)
    }
    expect(wrong).toEqual([])
  })
})
