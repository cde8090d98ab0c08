import { join } from 'node:path'
import type { ModelView } from '../../lifecycle/versions/version-state.js'
import type { Logger } from '../../log.js'
import type { ServerMetrics } from '../../metrics/server-metrics.js'
import { isModelName } from '../../repository/layout.js'
import type { Feeds } from '../../runtime/feeds.js'
import type { AcceptedFeedback } from '../feedback.js'
import type { RequestTap, TapFollowUp, TapRequest } from '../request-taps.js'
import { feedbackLine, predictionLine, tensorsJson } from './payload-lines.js'
import { PayloadWriter } from './payload-writer.js'

/** `<state-dir>/payloads/<model>/`: each model's payload log. */
const PAYLOADS_DIR = 'payloads'

const MEGABYTE = 1024 * 1024

export interface PayloadLogsOptions {
  readonly stateDir: string
  readonly metrics: ServerMetrics
  readonly logger: Logger
}

/**
 * The payload log of every model whose model.json asks for one (`payloadLog`): a sample of its
 * requests with their answers, and the feedback given on them, as JSON lines a retraining job
 * reads and joins by id. A request tap: an unsampled request costs one Math.random().
 */
export class PayloadLogs implements RequestTap {
  readonly #dir: string
  readonly #metrics: ServerMetrics
  readonly #logger: Logger
  readonly #writers = new Map<string, PayloadWriter>()
  #closed = false

  constructor(options: PayloadLogsOptions) {
    this.#dir = join(options.stateDir, PAYLOADS_DIR)
    this.#metrics = options.metrics
    this.#logger = options.logger
  }

  observe(request: TapRequest, feeds: Feeds): TapFollowUp | undefined {
    const config = request.model.config.payloadLog
    if (config === undefined || !(Math.random() < config.fraction)) return undefined
    // Encoded now, while the feeds are still ours: the run may hand their buffers to a worker.
    const inputs = tensorsJson(feeds)
    const { model, version } = request.version
    const writer = this.#writerOf(model)
    return {
      after: function logPrediction(id, fetched) {
        const head = { id, time: new Date(), model, version }
        writer?.add(
          predictionLine(head, inputs, tensorsJson(fetched)),
          config.maxMegabytes * MEGABYTE,
        )
      },
    }
  }

  /** Feedback accepted for one of the model's predictions (logged or not: the join tells). */
  feedback(model: ModelView, item: AcceptedFeedback): void {
    const config = model.config.payloadLog
    if (config === undefined) return
    const head = { id: item.id, time: new Date(), model: model.name, version: item.version }
    const truth = item.label !== undefined ? { label: item.label } : { value: item.value }
    this.#writerOf(model.name)?.add(feedbackLine(head, truth), config.maxMegabytes * MEGABYTE)
  }

  /**
   * Writes what is queued, for at most `timeoutMs`; lines still queued then are abandoned (logged
   * with their number). Lines logged after this are dropped.
   */
  async close(timeoutMs: number): Promise<void> {
    this.#closed = true
    const writers = [...this.#writers.entries()]
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(writers.map(([, w]) => w.close())),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ])
    clearTimeout(timer)
    for (const [model, w] of writers) {
      if (w.queued > 0) this.#logger.warn('payload_log_abandoned', { model, lines: w.queued })
    }
  }

  #writerOf(model: string): PayloadWriter | undefined {
    let w = this.#writers.get(model)
    if (w || this.#closed) return w
    // Served model names are folder names already; a name that is not one never becomes a path.
    if (!isModelName(model)) return undefined
    const lines = this.#metrics.payloadLogLines
    w = new PayloadWriter(
      join(this.#dir, model),
      model,
      {
        written: lines.labels({ model, result: 'written' }),
        dropped: lines.labels({ model, result: 'dropped' }),
        failed: lines.labels({ model, result: 'failed' }),
      },
      this.#logger,
    )
    this.#writers.set(model, w)
    return w
  }
}
