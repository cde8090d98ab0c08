import { fork, type ChildProcess } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../../log.js'
import type { FromGate, ToGate } from './gate-process.js'
import type { GateJob, GateReport, GateStage } from './gate-types.js'
import { roundMs } from './stage-results.js'
import type { RejectionReason } from './rejection-reasons.js'

export type GateOutcome =
  | { readonly kind: 'report'; readonly report: GateReport }
  | { readonly kind: 'cancelled' }

export interface GateRunOptions {
  readonly timeoutMs: number
  /** Aborting abandons the gate (a newer candidate superseded it). */
  readonly signal?: AbortSignal
}

/** Tests run the sources, the server runs dist/: a forked process needs JavaScript either way. */
const ENTRY = fileURLToPath(
  import.meta.url.endsWith('.ts')
    ? new URL('../../../dist/lifecycle/gate/gate-process.js', import.meta.url)
    : new URL('./gate-process.js', import.meta.url),
)
const GATE_NICENESS = 10

/**
 * After a gate whose model file is larger than this, the gate process is ended: the runtime keeps
 * what a large model needed (2 GB after a 1.9 GB model, for minutes) and the system gets it back
 * only when the process exits. The next gate starts a fresh process, a fraction of a second that
 * is nothing next to gating such a model.
 */
const RECYCLE_ABOVE_BYTES = 256 * 2 ** 20

export interface GateRunnerOptions {
  /** RECYCLE_ABOVE_BYTES unless set (tests lower it). */
  readonly recycleAboveBytes?: number
}

/**
 * Runs gates in a child process, one at a time, starting it on first use and again after it dies.
 * A gate that outlives its time limit is stopped by killing the process; a process that dies
 * mid-gate (a model that crashes the runtime) fails that gate, and the server carries on.
 */
export class GateRunner {
  readonly #logger: Logger
  readonly #recycleAboveBytes: number
  #child: ChildProcess | undefined
  #queue: Promise<unknown> = Promise.resolve()
  #nextId = 1
  #closed = false

  constructor(logger: Logger, options: GateRunnerOptions = {}) {
    this.#logger = logger
    this.#recycleAboveBytes = options.recycleAboveBytes ?? RECYCLE_ABOVE_BYTES
  }

  run(job: GateJob, options: GateRunOptions): Promise<GateOutcome> {
    const result = this.#queue.then(async () => {
      const bytes = await stat(job.candidate.file).then(
        (f) => f.size,
        () => 0,
      )
      const who = { model: job.model, version: job.version }
      // A big model can take seconds to gate: every step is said as it ends, never silence.
      this.#logger.info('gate_started', { ...who, bytes, sha256: job.candidate.sha256 })
      const outcome = await this.#runNow(job, options)
      if (outcome.kind === 'report') {
        const { report } = outcome
        for (const s of report.stages) {
          this.#logger.info('gate_stage', {
            ...who,
            stage: s.stage,
            status: s.status,
            ms: roundMs(s.ms),
            ...(s.reason !== undefined && { reason: s.reason }),
          })
        }
        this.#logger.info('gate_finished', {
          ...who,
          passed: report.passed,
          ms: roundMs(report.ms),
        })
      } else {
        this.#logger.info('gate_cancelled', who)
      }
      if (bytes > this.#recycleAboveBytes) this.#recycle(bytes)
      return outcome
    })
    this.#queue = result.catch(() => undefined)
    return result
  }

  /**
   * Starts the gate process now rather than at the first gate: a replica that just took the
   * gatekeeper lease has none (followers never gate), and starting one (a Node process loading
   * onnxruntime, at low priority) would delay the first version it gates.
   */
  prepare(): void {
    if (this.#closed || this.#child) return
    this.#child = this.#spawn()
  }

  async close(): Promise<void> {
    this.#closed = true
    const child = this.#child
    this.#child = undefined
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      // The child is unref'd so it never keeps the server alive; while we wait for it, it must.
      child.ref()
      child.kill('SIGKILL')
      await exited
    }
  }

  /** Ends the gate process after a large gate, so its memory goes back; the next gate starts another. */
  #recycle(bytes: number): void {
    const child = this.#child
    if (!child) return
    this.#child = undefined
    child.kill()
    this.#logger.info('gate_process_recycled', {
      pid: child.pid,
      modelBytes: bytes,
      aboveBytes: this.#recycleAboveBytes,
    })
  }

  #spawn(): ChildProcess {
    const child = fork(ENTRY, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Memory freed after each gate goes back to the OS (glibc otherwise keeps it: RSS stays up).
      env: {
        ...process.env,
        MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072',
      },
      execArgv: [],
    })
    child.on('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined
      if (!this.#closed) this.#logger.debug('gate_process_exit', { code, signal })
    })
    // Serving comes first: the gate process gets the CPU that requests leave over.
    try {
      if (child.pid !== undefined) setPriority(child.pid, GATE_NICENESS)
    } catch (e) {
      this.#logger.debug('gate_priority_unchanged', { error: e })
    }
    child.unref()
    ;(child.channel as { unref?: () => void } | undefined)?.unref?.()
    return child
  }

  #runNow(job: GateJob, { timeoutMs, signal }: GateRunOptions): Promise<GateOutcome> {
    if (this.#closed) return Promise.resolve({ kind: 'cancelled' })
    if (signal?.aborted) return Promise.resolve({ kind: 'cancelled' })
    // A process that was killed (a timeout) or died is never reused: it may still be exiting.
    if (
      this.#child &&
      (this.#child.killed ||
        this.#child.exitCode !== null ||
        this.#child.signalCode !== null ||
        !this.#child.connected)
    ) {
      this.#child = undefined
    }
    this.#child ??= this.#spawn()
    const child = this.#child
    const id = this.#nextId++
    const started = performance.now()
    let stage: GateStage = 'load'
    return new Promise<GateOutcome>((resolve) => {
      const failed = (reason: RejectionReason, message: string): GateOutcome => ({
        kind: 'report',
        report: {
          passed: false,
          unverified: false,
          stages: [{ stage, status: 'failed', ms: performance.now() - started, reason, message }],
          warnings: [],
          signature: undefined,
          ms: performance.now() - started,
        },
      })
      const finish = (outcome: GateOutcome) => {
        clearTimeout(timer)
        child.off('message', onMessage)
        child.off('exit', onExit)
        signal?.removeEventListener('abort', onAbort)
        resolve(outcome)
      }
      const onMessage = (m: FromGate) => {
        if (m.id !== id) return
        if (m.type === 'stage') stage = m.stage as GateStage
        else if (m.type === 'done') finish({ kind: 'report', report: m.report })
        else if (m.type === 'cancelled') finish({ kind: 'cancelled' })
        else {
          this.#logger.error('gate_error', {
            model: job.model,
            version: job.version,
            stage,
            error: m.message,
            stack: m.stack,
          })
          finish(
            failed(
              'gate_error',
              `the gate failed unexpectedly in the '${stage}' stage: ${m.message}`,
            ),
          )
        }
      }
      const onExit = (code: number | null, sig: NodeJS.Signals | null) => {
        if (this.#closed) return finish({ kind: 'cancelled' })
        finish(
          failed(
            'runtime_crash',
            `the runtime crashed while running the '${stage}' stage (gate process exit ${sig ?? code})`,
          ),
        )
      }
      const onAbort = () => child.send({ type: 'cancel', id } satisfies ToGate)
      const timer = setTimeout(() => {
        child.off('exit', onExit)
        if (this.#child === child) this.#child = undefined // the next gate gets a fresh process
        child.kill('SIGKILL')
        finish(
          failed(
            'timeout',
            `the '${stage}' stage did not finish within the gate's ${Math.round(timeoutMs / 1000)} s limit`,
          ),
        )
      }, timeoutMs)
      child.on('message', onMessage)
      child.once('exit', onExit)
      signal?.addEventListener('abort', onAbort, { once: true })
      child.send({ type: 'run', id, job } satisfies ToGate)
    })
  }
}
