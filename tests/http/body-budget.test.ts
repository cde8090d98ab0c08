import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BodyBudget, type BodyClaim } from '../../src/http/body-budget.js'

describe('BodyBudget', () => {
  it('claims up front, grows a claim as bytes arrive, and gives everything back on release', () => {
    const budget = new BodyBudget(100)
    const a = budget.claim(40)!
    expect(budget.used).toBe(40)
    expect(a.cover(30)).toBe(true) // already held
    expect(a.cover(70)).toBe(true)
    expect(budget.used).toBe(70)
    a.release()
    expect(budget.used).toBe(0)
  })

  it('refuses a claim or a growth that does not fit, all or nothing', () => {
    const budget = new BodyBudget(100)
    const a = budget.claim(60)!
    expect(budget.claim(41)).toBeUndefined()
    expect(budget.used).toBe(60)
    const b = budget.claim(0)!
    expect(b.cover(41)).toBe(false)
    expect(b.held).toBe(0)
    expect(b.cover(40)).toBe(true)
    expect(budget.used).toBe(100)
    a.release()
    b.release()
    expect(budget.used).toBe(0)
  })

  it('gives back once: a second release, or growing after it, changes nothing', () => {
    const budget = new BodyBudget(100)
    const a = budget.claim(10)!
    const b = budget.claim(20)!
    a.release()
    a.release()
    expect(a.cover(50)).toBe(false)
    expect(budget.used).toBe(20)
    b.release()
    expect(budget.used).toBe(0)
  })

  it('never holds more than its capacity, and returns to 0 once every claim is released (any interleaving)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('claim' as const), bytes: fc.nat(120) }),
      fc.record({ kind: fc.constant('cover' as const), which: fc.nat(), bytes: fc.nat(120) }),
      fc.record({ kind: fc.constant('release' as const), which: fc.nat() }),
    )
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.array(op, { maxLength: 60 }),
        (capacity, ops) => {
          const budget = new BodyBudget(capacity)
          const claims: BodyClaim[] = []
          for (const o of ops) {
            if (o.kind === 'claim') {
              const c = budget.claim(o.bytes)
              if (c) claims.push(c)
              else expect(o.bytes).toBeGreaterThan(capacity - budget.used)
            } else if (claims.length > 0) {
              const c = claims[o.which % claims.length]!
              if (o.kind === 'cover') c.cover(o.bytes)
              else c.release()
            }
            expect(budget.used).toBeGreaterThanOrEqual(0)
            expect(budget.used).toBeLessThanOrEqual(capacity)
            expect(budget.used).toBe(claims.reduce((sum, c) => sum + c.held, 0))
          }
          for (const c of claims) c.release()
          expect(budget.used).toBe(0)
        },
      ),
    )
  })
})
