import type { Logger } from '../log.js'
import { Fifo } from './fifo.js'

/**
 * Lifecycle events as the outside world sees them: every history entry (`promoted`, `rejected`,
 * `rolled_back`, ...) published once, with an id, to whoever listens (webhooks, `GET /events`).
 */

/** What the history records: its `event` names the type; every other field is a detail. */
export interface EventRecord {
  readonly event: string
  readonly model: string
  readonly version: number
  readonly time: string
}

/** `{"id", "type", "model", "version", "time", ...details}`. */
export interface ModelgateEvent {
  /** Increases by one with every event this process publishes (1 first). */
  readonly id: number
  readonly type: string
  readonly model: string
  readonly version: number
  readonly time: string
  readonly [detail: string]: unknown
}

/** An event and its JSON, encoded once for every listener (a webhook signs these very bytes). */
export interface Published {
  readonly event: ModelgateEvent
  readonly json: string
}

/** Called in the publisher's turn: it must only queue (O(1)), never wait for a delivery. */
export type EventListener = (published: Published) => void

/** Events kept for `Last-Event-ID` replays. */
const RECENT_EVENTS = 1000

export class EventBus {
  readonly #logger: Logger
  readonly #keep: number
  readonly #recent = new Fifo<Published>()
  readonly #listeners = new Set<EventListener>()
  #lastId = 0

  constructor(logger: Logger, keep = RECENT_EVENTS) {
    this.#logger = logger
    this.#keep = keep
  }

  /** The id of the last event published; 0 before the first. */
  get lastId(): number {
    return this.#lastId
  }

  publish(record: EventRecord): ModelgateEvent {
    const { event: type, model, version, time, ...details } = record
    // History entries name no `id` or `type` of their own: the details cannot shadow these.
    const event: ModelgateEvent = { id: ++this.#lastId, type, model, version, time, ...details }
    const published = { event, json: JSON.stringify(event) }
    this.#recent.push(published)
    if (this.#recent.length > this.#keep) this.#recent.shift()
    for (const listener of this.#listeners) {
      try {
        listener(published)
      } catch (e) {
        // A listener's bug must not stop the others, nor the lifecycle step that published.
        this.#logger.error('event_listener_failed', { id: event.id, type, error: e })
      }
    }
    return event
  }

  /** Listens from the next event on; returns the function that stops listening. */
  listen(listener: EventListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * The kept events after `lastId`, oldest first. An id this process never gave (a client that
   * listened to an earlier run: ids start at 1 again) replays every kept event.
   */
  recentAfter(lastId: number): Published[] {
    const after = lastId > this.#lastId ? 0 : lastId
    return [...this.#recent].filter((p) => p.event.id > after)
  }
}
