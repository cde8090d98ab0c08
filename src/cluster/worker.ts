import cluster from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'
import { MetricsUnavailableError } from '../errors.js'
import type { Logger } from '../log.js'
import type { MetricsExposition } from '../metrics/server-metrics.js'
import { isOurs, type PrimaryMessage, type WorkerMessage } from './messages.js'

/** A worker's GET /metrics waits this long for the primary's aggregate (its own scrape of every worker). */
const METRICS_TIMEOUT_MS = 2000

/** True in a process the primary of `modelgate serve --workers N` forked. */
export function isClusterWorker(): boolean {
  return cluster.isWorker
}

interface Pending {
  readonly resolve: (text: string) => void
  readonly reject: (e: Error) => void
  readonly timer: NodeJS.Timeout
}

/**
 * This process's side of the cluster: its log lines name it (`"worker": id`), it answers the
 * primary's metric requests, asks the primary for every worker's metrics, and stops when asked.
 * Made first thing in a worker, before its server: a worker still starting answers the primary's
 * metric requests at once (with nothing yet), so a scrape never waits for one.
 */
export class PrimaryLink {
  readonly logger: Logger
  /**
   * It replaces a worker that died, and the others serve: the primary forks workers 1 to N first,
   * and Node numbers every fork after them (cluster ids are never reused).
   */
  readonly replacement: boolean
  readonly #pending = new Map<number, Pending>()
  #nextId = 0
  #onStop: ((reason: string) => void) | undefined

  constructor(logger: Logger, workers: number) {
    const worker = cluster.worker
    if (!worker) throw new Error('PrimaryLink: this process is not a cluster worker')
    this.replacement = worker.id > workers
    this.logger = withFields(logger, { worker: worker.id })
    // prom-client answers the primary's requests for this process's metrics from here on, from
    // the registries `exposition` names (its global one, empty, until then).
    new AggregatorRegistry()
    process.on('message', (message: unknown) => {
      if (isOurs<PrimaryMessage>(message)) this.#received(message)
    })
    // Node's cluster ends a worker whose primary is gone at once (process.exit(0)) after this
    // event: the log says why. No request can reach it any more: the primary held the socket.
    worker.on('disconnect', () => {
      if (!worker.exitedAfterDisconnect) this.logger.warn('primary_gone', { pid: process.pid })
    })
  }

  /** GET /metrics of this worker: every worker's metrics (`own` among them), from the primary. */
  exposition(own: Registry): MetricsExposition {
    AggregatorRegistry.setRegistries(own)
    return {
      contentType: own.contentType,
      text: () => this.#askForMetrics(),
    }
  }

  /** The server listens: tell the primary, and stop with `onStop` when it asks. */
  serving(onStop: (reason: string) => void): void {
    this.#onStop = onStop
    this.#send({ type: 'modelgate:serving' })
  }

  #received(message: PrimaryMessage): void {
    if (message.type === 'modelgate:stop') {
      this.#onStop?.(message.reason)
      return
    }
    const pending = this.#pending.get(message.id)
    if (!pending) return // answered after its timeout
    this.#pending.delete(message.id)
    clearTimeout(pending.timer)
    if (message.text !== undefined) pending.resolve(message.text)
    else pending.reject(unavailable(message.error ?? 'no text'))
  }

  #askForMetrics(): Promise<string> {
    const id = this.#nextId++
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(unavailable(`no answer within ${METRICS_TIMEOUT_MS / 1000} s`))
      }, METRICS_TIMEOUT_MS)
      this.#pending.set(id, { resolve, reject, timer })
      this.#send({ type: 'modelgate:metrics', id }, (e) => {
        this.#pending.delete(id)
        clearTimeout(timer)
        reject(unavailable(`cannot reach the primary process: ${e.message}`))
      })
    })
  }

  #send(message: WorkerMessage, onError?: (e: Error) => void): void {
    if (!process.connected) {
      onError?.(new Error('the IPC channel is closed'))
      return
    }
    process.send!(message, undefined, {}, (e: Error | null) => {
      if (e) onError?.(e)
    })
  }
}

function unavailable(why: string): MetricsUnavailableError {
  return new MetricsUnavailableError(
    `the primary process gave no aggregate of the workers' metrics: ${why}`,
  )
}

/** `logger`, with `fields` after each line's own (`event` stays first). */
function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  return {
    debug: (event, own) => logger.debug(event, { ...own, ...fields }),
    info: (event, own) => logger.info(event, { ...own, ...fields }),
    warn: (event, own) => logger.warn(event, { ...own, ...fields }),
    error: (event, own) => logger.error(event, { ...own, ...fields }),
  }
}
