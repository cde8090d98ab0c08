import type { Logger } from '../log.js'
import type { Published } from './event-bus.js'
import { Fifo } from './fifo.js'

/** What became of one event: sent, given up after every retry, pushed out of a full queue, or left at shutdown. */
export type DeliveryResult = 'delivered' | 'failed' | 'dropped' | 'abandoned'

/** One POST of an event; rejects when it was not accepted (a network error, a timeout, not 2xx). */
export type DeliveryAttempt = (published: Published, cancel: AbortSignal) => Promise<void>

export interface WebhookQueueOptions {
  /** The webhook as logs and metrics name it (no credentials, no query). */
  readonly name: string
  readonly attempt: DeliveryAttempt
  /** Events waiting, across models; beyond it the oldest waiting event is dropped. */
  readonly capacity: number
  /** Attempts after the first. */
  readonly retries: number
  /** The wait before retry `n` (1 first). */
  readonly backoffMs: (retry: number) => number
  readonly logger: Logger
  readonly counted: (result: DeliveryResult) => void
  /** Events waiting or being sent, after each change. */
  readonly depthChanged: (depth: number) => void
}

/** A model's events, sent one at a time: a model's events arrive in the order they happened. */
interface Lane {
  readonly waiting: Fifo<Published>
  sending: boolean
}

/**
 * The deliveries to one webhook URL. `push` is O(models) at worst and never waits: the event is
 * queued, and sending happens in later turns, so a webhook that is down, slow or failing costs
 * the lifecycle and the requests nothing. Models are independent lanes (one model's retries do
 * not hold up another's events); within a lane, an event is sent only after the one before it was
 * delivered or given up.
 */
export class WebhookQueue {
  readonly #o: WebhookQueueOptions
  readonly #lanes = new Map<string, Lane>()
  /** Cancels what is in progress (sends and waits between attempts) when the queue is abandoned. */
  readonly #abandon = new AbortController()
  #waiting = 0
  #sending = 0
  /** Dropped for overflow since the queue was last below capacity: one log line per episode. */
  #overflowDropped = 0
  #idle: (() => void) | undefined
  #closing = false

  constructor(options: WebhookQueueOptions) {
    this.#o = options
  }

  get depth(): number {
    return this.#waiting + this.#sending
  }

  push(published: Published): void {
    if (this.#closing) return
    let lane = this.#lanes.get(published.event.model)
    if (!lane) {
      lane = { waiting: new Fifo(), sending: false }
      this.#lanes.set(published.event.model, lane)
    }
    lane.waiting.push(published)
    this.#waiting++
    if (this.#waiting > this.#o.capacity) this.#dropOldest()
    this.#o.depthChanged(this.depth)
    if (!lane.sending) void this.#drain(published.event.model, lane)
  }

  /**
   * Waits up to `graceMs` for every queued event to be sent, then gives up on the rest (nothing
   * new is taken meanwhile). Returns how many events were abandoned.
   */
  async close(graceMs: number): Promise<number> {
    this.#closing = true
    if (this.depth > 0) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>((resolve) => (this.#idle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ])
      clearTimeout(timer)
    }
    const abandoned = this.depth
    this.#abandon.abort()
    for (let i = 0; i < abandoned; i++) this.#o.counted('abandoned')
    for (const lane of this.#lanes.values()) lane.waiting.clear()
    this.#lanes.clear()
    this.#waiting = 0
    this.#sending = 0
    this.#o.depthChanged(0)
    return abandoned
  }

  /** Sends a lane's events one after the other until it is empty. */
  async #drain(model: string, lane: Lane): Promise<void> {
    lane.sending = true
    for (let next = lane.waiting.shift(); next; next = lane.waiting.shift()) {
      this.#waiting--
      this.#sending++
      const result = await this.#deliver(next)
      if (this.#abandon.signal.aborted) return // counted as abandoned by close()
      this.#sending--
      this.#o.counted(result)
      this.#o.depthChanged(this.depth)
      if (this.#overflowDropped > 0 && this.#waiting < this.#o.capacity / 2) {
        this.#o.logger.info('webhook_queue_recovered', {
          webhook: this.#o.name,
          dropped: this.#overflowDropped,
        })
        this.#overflowDropped = 0
      }
    }
    lane.sending = false
    this.#lanes.delete(model) // a lane per model ever seen would grow with every name
    if (this.depth === 0) this.#idle?.()
  }

  async #deliver(published: Published): Promise<DeliveryResult> {
    const { logger, name, retries } = this.#o
    const signal = this.#abandon.signal
    for (let retry = 0; ; retry++) {
      try {
        await this.#o.attempt(published, signal)
        return 'delivered'
      } catch (e) {
        if (signal.aborted) return 'abandoned'
        logger.debug('webhook_attempt_failed', {
          webhook: name,
          id: published.event.id,
          attempt: retry + 1,
          error: e,
        })
        if (retry === retries) {
          logger.warn('webhook_delivery_failed', {
            webhook: name,
            id: published.event.id,
            type: published.event.type,
            model: published.event.model,
            attempts: retry + 1,
            error: e,
          })
          return 'failed'
        }
        await pause(this.#o.backoffMs(retry + 1), signal)
        if (signal.aborted) return 'abandoned'
      }
    }
  }

  /** The oldest waiting event of any model goes: the lanes' heads, compared by id. */
  #dropOldest(): void {
    let oldest: Lane | undefined
    for (const lane of this.#lanes.values()) {
      const head = lane.waiting.peek()
      if (head && (!oldest || head.event.id < oldest.waiting.peek()!.event.id)) oldest = lane
    }
    const dropped = oldest?.waiting.shift()
    if (!dropped) return
    this.#waiting--
    this.#o.counted('dropped')
    if (this.#overflowDropped++ === 0)
      this.#o.logger.warn('webhook_queue_full', {
        webhook: this.#o.name,
        capacity: this.#o.capacity,
        message: 'the webhook does not keep up: the oldest waiting events are dropped',
      })
  }
}

/** Waits `ms`, or less if `signal` aborts; the timer never keeps the process alive. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    timer.unref()
    signal.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}
