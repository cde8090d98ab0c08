import { describe, expect, it } from 'vitest'
import { EventBus, type Published } from '../../src/events/event-bus.js'
import { Fifo } from '../../src/events/fifo.js'
import { type DeliveryResult, WebhookQueue } from '../../src/events/webhook-queue.js'
import { createMemoryLogger } from '../../src/log.js'
import { waitFor } from '../support/wait-for.js'

/**
 * The queue's rules with a stand-in transport the test controls: no network, no sleeps. Each
 * attempt is a promise the test settles, so retries, order and overflow are stepped through.
 */

interface Attempt {
  readonly published: Published
  readonly cancel: AbortSignal
  accept(): void
  refuse(): void
}

function harness(o: { capacity?: number; retries?: number } = {}) {
  const logger = createMemoryLogger()
  const bus = new EventBus(logger)
  const attempts: Attempt[] = []
  const results: DeliveryResult[] = []
  const depths: number[] = []
  const backoffs: number[] = []
  const queue = new WebhookQueue({
    name: 'http://receiver/hook',
    attempt: (published, cancel) =>
      new Promise<void>((resolve, reject) => {
        attempts.push({
          published,
          cancel,
          accept: resolve,
          refuse: () => reject(new Error('500')),
        })
        cancel.addEventListener('abort', () => reject(new Error('aborted')))
      }),
    capacity: o.capacity ?? 100,
    retries: o.retries ?? 5,
    backoffMs: (retry) => {
      backoffs.push(retry)
      return 0
    },
    logger,
    counted: (result) => results.push(result),
    depthChanged: (depth) => depths.push(depth),
  })
  bus.listen((p) => queue.push(p))
  const publish = (model: string, version: number, event = 'promoted') =>
    bus.publish({ event, model, version, time: new Date().toISOString() })
  /** The attempt in progress for `model` (the newest one). */
  const current = (model: string) => attempts.findLast((a) => a.published.event.model === model)
  return { logger, queue, attempts, results, depths, backoffs, publish, current }
}

describe('WebhookQueue', () => {
  it('sends a model’s events one at a time, in order; models do not wait for each other', async () => {
    const h = harness()
    h.publish('a', 1)
    h.publish('a', 2)
    h.publish('b', 1)
    // One attempt per model in flight: a's second event waits for its first.
    expect(h.attempts.map((a) => [a.published.event.model, a.published.event.version])).toEqual([
      ['a', 1],
      ['b', 1],
    ])
    expect(h.queue.depth).toBe(3)
    h.current('a')!.accept()
    await waitFor(() => h.attempts.length === 3, 'a:2 to be sent')
    expect(h.current('a')!.published.event.version).toBe(2)
    h.current('a')!.accept()
    h.current('b')!.accept()
    await waitFor(() => h.queue.depth === 0, 'the queue to empty')
    expect(h.results).toEqual(['delivered', 'delivered', 'delivered'])
    expect(h.depths.at(-1)).toBe(0)
  })

  it('retries a refused event with backoff and holds the model’s later events until it is delivered', async () => {
    const h = harness()
    h.publish('a', 1)
    h.publish('a', 2)
    for (let i = 0; i < 3; i++) {
      h.current('a')!.refuse()
      await waitFor(() => h.attempts.length === i + 2, `retry ${i + 1}`)
      expect(h.current('a')!.published.event.version).toBe(1)
    }
    expect(h.backoffs).toEqual([1, 2, 3])
    h.current('a')!.accept()
    await waitFor(() => h.current('a')!.published.event.version === 2, 'a:2 after a:1')
    h.current('a')!.accept()
    await waitFor(() => h.queue.depth === 0, 'the queue to empty')
    expect(h.results).toEqual(['delivered', 'delivered'])
  })

  it('gives an event up after every retry, counts and logs it, and goes on with the next', async () => {
    const h = harness({ retries: 2 })
    h.publish('a', 1)
    h.publish('a', 2)
    for (let i = 0; i < 3; i++) {
      await waitFor(() => h.attempts.length === i + 1, `attempt ${i + 1}`)
      h.current('a')!.refuse()
    }
    await waitFor(() => h.current('a')!.published.event.version === 2, 'a:2 next')
    expect(h.results).toEqual(['failed'])
    const failed = h.logger.records.find((r) => r.event === 'webhook_delivery_failed')
    expect(failed).toMatchObject({ model: 'a', attempts: 3, type: 'promoted', error: '500' })
    h.current('a')!.accept()
    await waitFor(() => h.results.length === 2, 'a:2 delivered')
    expect(h.results).toEqual(['failed', 'delivered'])
  })

  it('when full, drops the oldest waiting event of any model, logging once per episode', async () => {
    const h = harness({ capacity: 3 })
    h.publish('a', 1) // sent at once: not waiting, not dropped
    h.publish('b', 1) // sent at once
    h.publish('a', 2)
    h.publish('b', 2)
    h.publish('a', 3)
    expect(h.results).toEqual([])
    h.publish('b', 3) // 4 waiting: a:2, the oldest, goes
    h.publish('a', 4) // b:2 goes
    expect(h.results).toEqual(['dropped', 'dropped'])
    expect(h.queue.depth).toBe(5) // 2 sending + 3 waiting
    expect(h.logger.records.filter((r) => r.event === 'webhook_queue_full')).toHaveLength(1)
    h.current('a')!.accept()
    await waitFor(
      () => h.current('a')!.published.event.version === 3,
      'a:3 after a:1 (a:2 dropped)',
    )
    h.current('b')!.accept()
    await waitFor(() => h.current('b')!.published.event.version === 3, 'b:3 after b:1')
    h.current('a')!.accept()
    h.current('b')!.accept()
    await waitFor(() => h.current('a')!.published.event.version === 4, 'a:4')
    h.current('a')!.accept()
    await waitFor(() => h.queue.depth === 0, 'the queue to empty')
    expect(h.logger.records.find((r) => r.event === 'webhook_queue_recovered')).toMatchObject({
      dropped: 2,
    })
  })

  it('at close, waits for what is queued, within a grace period', async () => {
    const h = harness()
    h.publish('a', 1)
    const closing = h.queue.close(10_000)
    h.publish('a', 2) // closing: not taken
    h.current('a')!.accept()
    expect(await closing).toBe(0)
    expect(h.results).toEqual(['delivered'])
    expect(h.attempts).toHaveLength(1)
  })

  it('abandons what is left after the grace period: the attempt in flight is cancelled', async () => {
    const h = harness()
    h.publish('a', 1)
    h.publish('a', 2)
    h.publish('b', 1)
    expect(await h.queue.close(20)).toBe(3)
    expect(h.attempts.every((a) => a.cancel.aborted)).toBe(true)
    expect(h.results).toEqual(['abandoned', 'abandoned', 'abandoned'])
    expect(h.queue.depth).toBe(0)
    expect(h.depths.at(-1)).toBe(0)
  })
})

describe('EventBus', () => {
  it('numbers events from 1 and shapes them {id, type, model, version, time, ...details}', () => {
    const bus = new EventBus(createMemoryLogger())
    const seen: Published[] = []
    bus.listen((p) => seen.push(p))
    const time = '2026-12-03T10:00:00.000Z'
    bus.publish({
      event: 'promoted',
      model: 'iris',
      version: 3,
      time,
      sha256: 'ab',
      from: 2,
    } as never)
    bus.publish({ event: 'auto_rolled_back', model: 'iris', version: 3, time, to: 2 } as never)
    expect(seen.map((p) => JSON.parse(p.json))).toEqual([
      { id: 1, type: 'promoted', model: 'iris', version: 3, time, sha256: 'ab', from: 2 },
      { id: 2, type: 'auto_rolled_back', model: 'iris', version: 3, time, to: 2 },
    ])
    expect(bus.lastId).toBe(2)
  })

  it('keeps the recent events for replays; an id it never gave replays them all', () => {
    const bus = new EventBus(createMemoryLogger(), 3)
    for (let v = 1; v <= 5; v++)
      bus.publish({ event: 'promoted', model: 'm', version: v, time: '' })
    const ids = (after: number) => bus.recentAfter(after).map((p) => p.event.id)
    expect(ids(0)).toEqual([3, 4, 5])
    expect(ids(3)).toEqual([4, 5])
    expect(ids(5)).toEqual([])
    expect(ids(99)).toEqual([3, 4, 5])
  })

  it('a listener that throws is logged and the others still hear the event', () => {
    const logger = createMemoryLogger()
    const bus = new EventBus(logger)
    const heard: number[] = []
    bus.listen(() => {
      throw new Error('bug')
    })
    const stop = bus.listen((p) => heard.push(p.event.id))
    bus.publish({ event: 'promoted', model: 'm', version: 1, time: '' })
    stop()
    bus.publish({ event: 'promoted', model: 'm', version: 2, time: '' })
    expect(heard).toEqual([1])
    expect(logger.records.filter((r) => r.event === 'event_listener_failed')).toHaveLength(2)
  })
})

describe('Fifo', () => {
  it('keeps order across compactions', () => {
    const f = new Fifo<number>()
    const out: number[] = []
    for (let i = 0; i < 5000; i++) {
      f.push(i)
      if (i % 3 === 0) out.push(f.shift()!)
    }
    while (f.length > 0) out.push(f.shift()!)
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i))
    expect(f.shift()).toBeUndefined()
  })
})
