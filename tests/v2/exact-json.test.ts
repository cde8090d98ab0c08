import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseExactJson } from '../../src/v2/exact-json.js'

/** The V2 exact JSON parser: JSON.parse's values, with integers beyond 2^53 exact, at any depth. */

describe('parseExactJson', () => {
  it('reads every JSON document as JSON.parse does when it holds a long integer (the exact parser runs)', () => {
    fc.assert(
      // Without integer literals of 16+ digits of their own: those are BigInt here, by design.
      fc.property(
        fc.jsonValue().filter((v) => !/\d{16,}/.test(JSON.stringify(v))),
        (value) => {
          const text = `[12345678901234567, ${JSON.stringify(value)}]`
          expect(parseExactJson(text)).toEqual([
            12345678901234567n,
            JSON.parse(JSON.stringify(value)),
          ])
        },
      ),
    )
  })

  it('parses arrays and objects nested 100,000 deep without recursion', () => {
    const depth = 100_000
    const arrays = parseExactJson('['.repeat(depth) + '12345678901234567' + ']'.repeat(depth))
    let node: unknown = arrays
    for (let i = 0; i < depth; i++) node = (node as unknown[])[0]
    expect(node).toBe(12345678901234567n)
    const objects = parseExactJson(
      '{"a": '.repeat(depth) + '[12345678901234567, {}, []]' + '}'.repeat(depth),
    ) as Record<string, unknown>
    node = objects
    for (let i = 0; i < depth; i++) node = (node as Record<string, unknown>).a
    expect(node).toEqual([12345678901234567n, {}, []])
  })

  it('refuses malformed documents as JSON.parse would (a SyntaxError)', () => {
    for (const text of [
      '[12345678901234567',
      '[12345678901234567,]',
      '{"a" 12345678901234567}',
      '{"a": 12345678901234567,}',
      '[12345678901234567] x',
      '[12345678901234567 1]',
      '{12345678901234567: 1}',
    ]) {
      expect(() => parseExactJson(text), text).toThrow(SyntaxError)
    }
  })

  it('keeps "__proto__" as a key, as JSON.parse does', () => {
    const parsed = parseExactJson('{"__proto__": 12345678901234567}') as Record<string, unknown>
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype)
    expect(Object.hasOwn(parsed, '__proto__')).toBe(true)
  })
})
