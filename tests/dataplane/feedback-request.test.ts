import { describe, expect, it } from 'vitest'
import { feedbackRequestSchema, MAX_FEEDBACK_ITEMS } from '../../src/dataplane/feedback.js'

const parse = (body: unknown) => feedbackRequestSchema.safeParse(body)

/** The messages of a rejected body, joined, for matching. */
function rejected(body: unknown): string {
  const result = parse(body)
  expect(result.success, JSON.stringify(body)).toBe(false)
  return JSON.stringify(result.error?.issues)
}

describe('feedbackRequestSchema', () => {
  it.each([
    { id: 'p1', label: 2 },
    { id: 'p1', label: 'cat' },
    { id: 'p1', label: true },
    { id: 'p1', label: [1, 'b', false] },
    { id: 'p1', value: 3.7 },
    { id: 'p1', value: [1, -2.5] },
  ])('takes a single item %j', (item) => {
    expect(parse(item)).toEqual({ success: true, data: item })
  })

  it('takes a batch of items, labels and values mixed', () => {
    const body = {
      items: [
        { id: 'a', label: 1 },
        { id: 'b', value: 0.5 },
      ],
    }
    expect(parse(body)).toEqual({ success: true, data: body })
  })

  it('rejects an item with both a label and a value, or neither', () => {
    expect(rejected({ id: 'p1', label: 1, value: 1 })).toContain(
      'either \\"label\\" or \\"value\\"',
    )
    expect(rejected({ id: 'p1' })).toContain('either \\"label\\" or \\"value\\"')
    expect(rejected({ items: [{ id: 'a', label: 1 }, { id: 'b' }] })).toContain(
      'either \\"label\\" or \\"value\\"',
    )
  })

  it('rejects an item without an id, with an empty one or one over 128 characters', () => {
    rejected({ label: 1 })
    rejected({ id: '', label: 1 })
    expect(parse({ id: 'a'.repeat(128), label: 1 }).success).toBe(true)
    rejected({ id: 'a'.repeat(129), label: 1 })
  })

  it('rejects empty label or value lists and unknown fields', () => {
    rejected({ id: 'p1', label: [] })
    rejected({ id: 'p1', value: [] })
    rejected({ id: 'p1', value: '3' })
    rejected({ id: 'p1', label: 1, extra: 1 })
    rejected({ items: [{ id: 'a', label: 1 }], extra: 1 })
  })

  it(`takes up to ${MAX_FEEDBACK_ITEMS} items and rejects more, or none`, () => {
    const items = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `p${i}`, label: 0 }))
    expect(parse({ items: items(MAX_FEEDBACK_ITEMS) }).success).toBe(true)
    rejected({ items: items(MAX_FEEDBACK_ITEMS + 1) })
    rejected({ items: [] })
  })

  it('allows the 10k items the design promises', () => {
    expect(MAX_FEEDBACK_ITEMS).toBe(10_000)
  })
})
