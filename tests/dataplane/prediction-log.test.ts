import { describe, expect, it } from 'vitest'
import type { Answer } from '../../src/dataplane/prediction-answer.js'
import { PredictionLog } from '../../src/dataplane/prediction-log.js'
import { PredictionLogs } from '../../src/dataplane/prediction-logs.js'

const answer = (label: string): Answer => ({ labels: [label], values: undefined })

/** The ids among `ids` the log still remembers. */
const remembered = (log: PredictionLog, ids: string[]) => ids.filter((id) => log.get(id))

describe('PredictionLog', () => {
  it('remembers a prediction’s version and answer, not yet scored', () => {
    const log = new PredictionLog(10)
    const before = Date.now()
    log.remember('a', 3, answer('cat'))
    const p = log.get('a')!
    expect(p).toMatchObject({ version: 3, answer: answer('cat'), scored: false })
    expect(p.at).toBeGreaterThanOrEqual(before)
    expect(p.at).toBeLessThanOrEqual(Date.now())
    expect(log.get('b')).toBeUndefined()
  })

  it('forgets the oldest beyond its capacity', () => {
    const log = new PredictionLog(3)
    for (const id of ['a', 'b', 'c', 'd', 'e']) log.remember(id, 1, answer(id))
    expect(remembered(log, ['a', 'b', 'c', 'd', 'e'])).toEqual(['c', 'd', 'e'])
  })

  it('replaces a prediction whose id is used again and counts it as the newest', () => {
    const log = new PredictionLog(3)
    log.remember('a', 1, answer('old'))
    log.markScored('a')
    log.remember('b', 1, answer('b'))
    log.remember('c', 1, answer('c'))
    log.remember('a', 2, answer('new'))
    expect(log.get('a')).toMatchObject({ version: 2, answer: answer('new'), scored: false })
    // 'a' moved to newest, so 'b' is now the oldest and leaves first.
    log.remember('d', 1, answer('d'))
    expect(remembered(log, ['a', 'b', 'c', 'd'])).toEqual(['a', 'c', 'd'])
  })

  it('forgets the oldest at once when resized smaller, and keeps more when larger', () => {
    const log = new PredictionLog(4)
    for (const id of ['a', 'b', 'c', 'd']) log.remember(id, 1, answer(id))
    log.resize(2)
    expect(log.capacity).toBe(2)
    expect(remembered(log, ['a', 'b', 'c', 'd'])).toEqual(['c', 'd'])
    log.resize(3)
    log.remember('e', 1, answer('e'))
    expect(remembered(log, ['c', 'd', 'e'])).toEqual(['c', 'd', 'e'])
  })

  it('remembers nothing with capacity 0', () => {
    const log = new PredictionLog(0)
    log.remember('a', 1, answer('a'))
    expect(log.get('a')).toBeUndefined()
    const shrunk = new PredictionLog(2)
    shrunk.remember('a', 1, answer('a'))
    shrunk.resize(0)
    expect(shrunk.get('a')).toBeUndefined()
  })
})

describe('PredictionLogs', () => {
  it('makes one log per model, on first use', () => {
    const logs = new PredictionLogs()
    const a = logs.of('a', 5)
    expect(logs.of('a', 5)).toBe(a)
    expect(logs.of('b', 5)).not.toBe(a)
    expect(a.capacity).toBe(5)
  })

  it('resizes a model’s log when its capacity changes, keeping the newest', () => {
    const logs = new PredictionLogs()
    const log = logs.of('m', 3)
    for (const id of ['a', 'b', 'c']) log.remember(id, 1, answer(id))
    expect(logs.of('m', 1)).toBe(log)
    expect(log.capacity).toBe(1)
    expect(remembered(log, ['a', 'b', 'c'])).toEqual(['c'])
  })
})
