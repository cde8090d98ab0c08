import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { AggregatorRegistry } from 'prom-client'
import type { ServeConfig } from '../config.js'
import type { Logger } from '../log.js'
import { isOurs, type PrimaryMessage, type WorkerMessage } from './messages.js'

/** The first restart of a worker that died waits this long; each death in a row doubles it. */
const FIRST_RESTART_DELAY_MS = 1000
const MAX_RESTART_DELAY_MS = 30_000
/** A worker that served this long before it died starts its slot's backoff afresh. */
const STEADY_MS = 60_000
/**
 * On a stop, a worker gets the shutdown timeout to drain, then up to 5 s each for its payload log
 * and its webhooks (server.ts), and the rest of its close: past this margin it is killed.
 */
const AFTER_DRAIN_MARGIN_MS = 15_000

/** One of the N places a worker serves in; a worker that dies is replaced in its slot. */
interface Slot {
  readonly index: number
  /** Deaths in a row (the backoff's exponent); 0 after a worker served for STEADY_MS. */
  deaths: number
  /** A worker of this slot has served: a later death is a crash to retry, not a failed start. */
  served: boolean
  restart: NodeJS.Timeout | undefined
}

interface Running {
  readonly slot: Slot
  servingSince: number | undefined
}

/**
 * `modelgate serve --workers N`, N > 1: this process serves nothing; it forks N workers that each
 * run the whole server (startServer) on the same port, which Node's cluster shares, replaces a
 * worker that dies, sums the workers' metrics for GET /metrics, and on SIGTERM or SIGINT has every
 * worker drain. Connections go round-robin (Node's default but on Windows): the primary accepts
 * each and hands it to the next worker, where the kernel's own choice among processes waiting on
 * one socket is known to favour a few. The price: a connection being handed to a worker at the
 * instant it dies is lost inside Node, and its client waits for its own timeout.
 */
export function runPrimary(config: ServeConfig, logger: Logger): void {
  new ClusterPrimary(config, logger).start()
}

class ClusterPrimary {
  readonly #config: ServeConfig
  readonly #logger: Logger
  readonly #running = new Map<Worker, Running>()
  readonly #slots: Slot[]
  /** prom-client asks every worker for its registry's metrics and aggregates them. */
  readonly #aggregator = new AggregatorRegistry()
  #stopping: { readonly reason: string; readonly since: number; exitCode: number } | undefined

  constructor(config: ServeConfig, logger: Logger) {
    this.#config = config
    this.#logger = logger
    this.#slots = Array.from({ length: config.workers }, (_, index) => ({
      index,
      deaths: 0,
      served: false,
      restart: undefined,
    }))
  }

  start(): void {
    const cores = availableParallelism()
    this.#logger.info('primary_started', { pid: process.pid, workers: this.#config.workers })
    if (this.#config.workers > cores)
      this.#logger.warn('workers_exceed_cores', {
        workers: this.#config.workers,
        cores,
        message: `more workers than the ${cores} cores Node may use: they take turns on the same cores, each with its own copy of every model in memory; --workers ${cores} or fewer is usually faster`,
      })
    cluster.on('message', (worker, message: unknown) => {
      if (isOurs<WorkerMessage>(message)) this.#received(worker, message)
    })
    cluster.on('exit', (worker, code, signal) => this.#exited(worker, code, signal))
    process.on('SIGTERM', () => this.#stop({ signal: 'SIGTERM' }))
    process.on('SIGINT', () => this.#stop({ signal: 'SIGINT' }))
    for (const slot of this.#slots) this.#fork(slot)
  }

  #fork(slot: Slot): void {
    slot.restart = undefined
    const worker = cluster.fork()
    this.#running.set(worker, { slot, servingSince: undefined })
    this.#logger.info('worker_started', { worker: worker.id, pid: worker.process.pid })
  }

  #received(worker: Worker, message: WorkerMessage): void {
    const running = this.#running.get(worker)
    if (!running) return
    if (message.type === 'modelgate:serving') {
      running.servingSince = Date.now()
      running.slot.served = true
      // A worker still starting when the stop began was sent SIGTERM; one that got its server up
      // since is asked too (its signal handlers may have come after the signal).
      if (this.#stopping) this.#askToStop(worker)
      return
    }
    this.#aggregator.clusterMetrics().then(
      (text) => this.#send(worker, { type: 'modelgate:metrics', id: message.id, text }),
      (e: unknown) => {
        this.#logger.warn('metrics_aggregation_failed', { error: e })
        this.#send(worker, {
          type: 'modelgate:metrics',
          id: message.id,
          error: (e as Error).message,
        })
      },
    )
  }

  #send(worker: Worker, message: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(message)
  }

  #exited(worker: Worker, code: number | null, signal: string | null): void {
    const running = this.#running.get(worker)
    if (!running) return
    this.#running.delete(worker)
    const { slot } = running
    const ended = { worker: worker.id, pid: worker.process.pid, code, signal }
    if (this.#stopping) {
      if (code !== 0) this.#failed()
      this.#logger.info('worker_stopped', ended)
      this.#exitOnceAllGone()
    } else if (!slot.served) {
      // It never served: the same cause (a port in use, a missing models directory) would end
      // every worker the same way. The worker printed why; stop the others and exit as it did.
      this.#logger.error('worker_failed_to_start', ended)
      this.#stop({ reason: 'worker_failed_to_start' }, code === 0 || code === null ? 1 : code)
    } else if (code === 0) {
      // It drained and exited by itself: a signal sent to it, not to the primary. Not replaced.
      this.#logger.info('worker_stopped', ended)
      if (this.#running.size === 0 && this.#slots.every((s) => s.restart === undefined))
        this.#stop({ reason: 'no_workers_left' })
    } else {
      this.#restartLater(slot, running, ended)
    }
  }

  #restartLater(slot: Slot, running: Running, ended: Record<string, unknown>): void {
    const served = running.servingSince === undefined ? 0 : Date.now() - running.servingSince
    if (served >= STEADY_MS) slot.deaths = 0
    const delayMs = Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** slot.deaths)
    slot.deaths++
    this.#logger.error('worker_died', { ...ended, servedMs: served })
    this.#logger.warn('worker_restarting', { slot: slot.index, inMs: delayMs, deaths: slot.deaths })
    slot.restart = setTimeout(() => this.#fork(slot), delayMs)
  }

  /** `why`: the signal received, or what ends the cluster; `exitCode`: the primary's at the end. */
  #stop(why: { signal: NodeJS.Signals } | { reason: string }, exitCode = 0): void {
    if (this.#stopping) {
      if ('signal' in why) {
        // A second signal: the operator does not want to wait, for any worker.
        this.#logger.warn('stopping_now', why)
        this.#failed()
        for (const worker of this.#running.keys()) worker.process.kill('SIGKILL')
      }
      return
    }
    const reason = 'signal' in why ? why.signal : why.reason
    this.#stopping = { reason, since: Date.now(), exitCode }
    for (const slot of this.#slots) clearTimeout(slot.restart)
    this.#logger.info('stopping', { ...why, workers: this.#running.size })
    for (const worker of this.#running.keys()) this.#askToStop(worker)
    const limitMs = this.#config.shutdownTimeoutMs + AFTER_DRAIN_MARGIN_MS
    setTimeout(() => this.#killLeft(limitMs), limitMs).unref()
    this.#exitOnceAllGone()
  }

  /**
   * Over IPC, not as a signal: Ctrl-C (and systemd's stop) signal every process of the group, and a
   * forwarded signal would then be a worker's second one, which stops it at once, undrained.
   */
  #askToStop(worker: Worker): void {
    const running = this.#running.get(worker)
    if (running?.servingSince !== undefined && worker.isConnected())
      this.#send(worker, { type: 'modelgate:stop', reason: this.#stopping?.reason ?? 'stop' })
    // Still starting: it has nothing to drain, and no handler yet that would keep it from ending.
    else worker.process.kill('SIGTERM')
  }

  #killLeft(limitMs: number): void {
    const left = [...this.#running.keys()]
    if (left.length === 0 || !this.#stopping) return
    this.#logger.error('workers_killed', {
      pids: left.map((w) => w.process.pid),
      message: `still running ${limitMs / 1000} s after the stop began`,
    })
    this.#failed()
    for (const worker of left) worker.process.kill('SIGKILL')
  }

  /** The stop went wrong: exit 1, unless a failed start already gave the status to exit with. */
  #failed(): void {
    if (this.#stopping?.exitCode === 0) this.#stopping.exitCode = 1
  }

  #exitOnceAllGone(): void {
    if (!this.#stopping || this.#running.size > 0) return
    this.#logger.info('stopped', { ms: Date.now() - this.#stopping.since })
    process.exit(this.#stopping.exitCode)
  }
}
