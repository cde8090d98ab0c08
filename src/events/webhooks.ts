import type { Logger } from '../log.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import type { EventBus } from './event-bus.js'
import { webhookPost } from './webhook-post.js'
import { WebhookQueue } from './webhook-queue.js'

export interface WebhooksOptions {
  readonly urls: readonly string[]
  /** Signs every body (`X-Modelgate-Signature`) when set. */
  readonly secret: string | undefined
  readonly logger: Logger
  readonly metrics: ServerMetrics
  /** False while another replica sends the events (this one only reads them): nothing is queued. */
  readonly sends?: () => boolean
}

const WEBHOOK_TIMEOUT_MS = 5000
const WEBHOOK_RETRIES = 5
const WEBHOOK_QUEUE_CAPACITY = 10_000

/** 1 s, 2 s, 4 s, 8 s, 16 s: a receiver restarting has half a minute to come back. */
function exponentialBackoff(retry: number): number {
  return 1000 * 2 ** (retry - 1)
}

/** A webhook as logs and metrics show it: no user, password or query, which may hold secrets. */
export function webhookName(url: string): string {
  const u = new URL(url)
  return `${u.origin}${u.pathname}`
}

/** Every `--webhook`: each gets every event, in its own queue, sent in the background. */
export class Webhooks {
  readonly #queues: { readonly name: string; readonly queue: WebhookQueue }[]
  readonly #logger: Logger
  readonly #stopListening: () => void

  constructor(bus: EventBus, o: WebhooksOptions) {
    this.#logger = o.logger
    this.#queues = o.urls.map((url) => {
      const name = webhookName(url)
      const queue = new WebhookQueue({
        name,
        attempt: webhookPost(url, { secret: o.secret, timeoutMs: WEBHOOK_TIMEOUT_MS }),
        capacity: WEBHOOK_QUEUE_CAPACITY,
        retries: WEBHOOK_RETRIES,
        backoffMs: exponentialBackoff,
        logger: o.logger,
        counted: (result) => o.metrics.webhookDeliveries.inc({ webhook: name, result }),
        depthChanged: (depth) => o.metrics.webhookQueueDepth.set({ webhook: name }, depth),
      })
      o.metrics.webhookQueueDepth.set({ webhook: name }, 0)
      return { name, queue }
    })
    const queues = this.#queues
    const sends = o.sends ?? (() => true)
    this.#stopListening = bus.listen(function queueForWebhooks(published) {
      if (!sends()) return
      for (const { queue } of queues) queue.push(published)
    })
  }

  /**
   * At shutdown: what is queued gets up to `graceMs` to be delivered; the rest is abandoned, and
   * the log says how many.
   */
  async close(graceMs: number): Promise<void> {
    this.#stopListening()
    await Promise.all(
      this.#queues.map(async ({ name, queue }) => {
        const abandoned = await queue.close(graceMs)
        if (abandoned > 0)
          this.#logger.warn('webhook_events_abandoned', {
            webhook: name,
            events: abandoned,
            graceMs,
          })
      }),
    )
  }
}
