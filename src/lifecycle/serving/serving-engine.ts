import { availableParallelism } from 'node:os'
import { hasControlFlow, readModelInfo } from '../../onnx/model-info.js'
import type { ModelConfig } from '../../repository/model-config.js'
import type { Engine, ExecutionMode } from '../../runtime/engine.js'
import { ModelSession, type SessionOptions } from '../../runtime/session.js'
import { WorkerPool, type WorkerLoss } from '../../runtime/worker-pool.js'

/**
 * `auto` runs a version in workers when one of these holds, measured by `npm run bench -- execution`
 * on a 2-core machine (README, "Where inference runs"): below them, the hand-off to a thread costs
 * more than the event loop gains.
 */
const AUTO_THRESHOLDS = {
  /**
   * Creating a session from a file this large holds the thread that does it for ~15-20 ms (measured
   * on the main thread: 0.9-2.5 ms at 1.07 MB, 18-30 ms at 8.4 MB, 87-207 ms at 33.7 MB, 250-530 ms at
   * 71.5 MB; 20 ms is crossed between 5.8 and 7.4 MB).
   */
  workersFromBytes: 6 * 2 ** 20,
  /**
   * A run this long (ms, at the largest batch the version will run) would hold the event loop, and
   * every other model's requests with it, past what `modelgate_event_loop_lag_seconds` should show.
   * Below it the main thread serves more: on 2 cores, workers never beat it on throughput.
   */
  workersFromRunMs: 10,
}

/** The flag's value, for models whose model.json does not choose. */
export type ExecutionSetting = 'auto' | ExecutionMode

export interface ExecutionChoice {
  readonly mode: ExecutionMode
  /** Why, as GET /models/{name} shows it. */
  readonly reason: string
  /** Worker threads when mode is `workers`; 0 on the main thread. */
  readonly workers: number
}

/** What is known of a version before it loads. */
export interface VersionFacts {
  readonly bytes: Uint8Array
  /** The gate's time for one run at the largest batch serving will use, if it measured one. */
  readonly runMs: number | undefined
}

/** 2, or as many as the machine has cores, up to 4: each worker is a session, weights included. */
function defaultWorkers(cores = availableParallelism()): number {
  return Math.min(4, Math.max(2, cores))
}

/**
 * Where a version could run, before anything of it is known but its model.json and the flag: in
 * workers unless `main` is chosen outright (what `auto` picks depends on the bytes). The larger
 * footprint, for the memory check before a file is read.
 */
export function widestExecution(
  config: ModelConfig['execution'],
  setting: ExecutionSetting,
): Pick<ExecutionChoice, 'mode' | 'workers'> {
  return (config.mode ?? setting) === 'main'
    ? { mode: 'main', workers: 0 }
    : { mode: 'workers', workers: config.workers ?? defaultWorkers() }
}

export function chooseExecution(
  config: ModelConfig['execution'],
  setting: ExecutionSetting,
  facts: VersionFacts,
): ExecutionChoice {
  const workers = config.workers ?? defaultWorkers()
  const inWorkers = (reason: string): ExecutionChoice => ({ mode: 'workers', reason, workers })
  const mode = config.mode ?? setting
  const from = config.mode !== undefined ? 'execution.mode in model.json' : '--execution'
  if (mode === 'workers') return inWorkers(`${from} is workers`)
  if (mode === 'main') return { mode: 'main', reason: `${from} is main`, workers: 0 }
  const size = facts.bytes.length
  if (size >= AUTO_THRESHOLDS.workersFromBytes)
    return inWorkers(
      `auto: the model is ${mb(size)}, creating its session would hold the event loop`,
    )
  if (controlFlow(facts.bytes))
    return inWorkers(
      'auto: the model has Loop or Scan operators, whose run time depends on the input (the timeout can end a run)',
    )
  if (facts.runMs !== undefined && facts.runMs >= AUTO_THRESHOLDS.workersFromRunMs) {
    return inWorkers(
      `auto: a run takes ${facts.runMs.toFixed(2)} ms, long enough to be worth a thread`,
    )
  }
  const timed =
    facts.runMs === undefined ? 'run time not measured' : `a run takes ${facts.runMs.toFixed(3)} ms`
  return {
    mode: 'main',
    reason: `auto: small (${mb(size)}) and quick (${timed}): runs on the event loop, no hand-off`,
    workers: 0,
  }
}

export interface EngineHooks {
  readonly timeoutMs: number
  readonly onWorkerLost?: (reason: WorkerLoss, error: unknown) => void
  readonly onStuckChange?: (stuck: number) => void
}

/** The version's sessions, where the choice says. Throws ModelLoadError for bytes that do not load. */
export function createEngine(
  bytes: Uint8Array,
  choice: ExecutionChoice,
  sessionOptions: SessionOptions,
  hooks: EngineHooks,
): Promise<Engine> {
  if (choice.mode === 'main') return ModelSession.create(bytes, sessionOptions)
  return WorkerPool.create(bytes, {
    workers: choice.workers,
    timeoutMs: hooks.timeoutMs,
    sessionOptions: {
      ...sessionOptions,
      intraOpNumThreads: sessionOptions.intraOpNumThreads ?? threadsPerWorker(choice.workers),
    },
    onWorkerLost: hooks.onWorkerLost,
    onStuckChange: hooks.onStuckChange,
  })
}

/**
 * onnxruntime gives a session a thread per core; workers side by side would each take every core
 * (2 workers on 2 cores: 4 threads fighting over 2, and the event loop squeezed out). Unless
 * model.json sets `session.intraOpNumThreads`, the cores are shared among the workers.
 */
function threadsPerWorker(workers: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / workers))
}

function controlFlow(bytes: Uint8Array): boolean {
  try {
    return hasControlFlow(readModelInfo(bytes))
  } catch {
    return false // not a ModelProto: creating the session says why
  }
}

function mb(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`
}
