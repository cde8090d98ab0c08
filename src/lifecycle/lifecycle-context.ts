import type { EventBus } from '../events/event-bus.js'
import type { Logger } from '../log.js'
import type { ExecutionSetting } from './serving/serving-engine.js'
import type { Ignored } from '../repository/scanner.js'
import type { LiveFigures } from '../metrics/live-figures.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import type { GateRunner } from './gate/gate-runner.js'
import type { History } from './state/history.js'
import type { ModelRegistry } from './versions/model-registry.js'

export interface LifecycleOptions {
  /** A file must be unchanged this long before it is read (unless a sidecar or folder rename vouches). */
  readonly stabilityMs: number
  /** Reject versions without smoke cases, for every model (model.json may also ask for it). */
  readonly requireSmoke: boolean
  /** Re-list every model folder this often, in case the file system dropped an event. */
  readonly rescanIntervalMs: number
  /** Poll the file system instead of using native events (network file systems). */
  readonly poll: boolean
  /** A larger model file is refused (`too_large`) before it is read. */
  readonly maxModelBytes: number
  /** Where models run when their model.json does not say (`--execution`). */
  readonly execution: ExecutionSetting
  /** `--max-memory`: a version that would take the process past it is not loaded. */
  readonly maxMemoryBytes: number | undefined
  /** How often running probations and rollouts are judged (ms; 1000 unless a test says otherwise). */
  readonly probationCheckMs?: number
}

export interface LifecycleDeps {
  readonly modelsDir: string
  readonly stateDir: string
  readonly registry: ModelRegistry
  readonly metrics: ServerMetrics
  /** Every version's live figures (the data plane records them; probation judges them). */
  readonly live: LiveFigures
  readonly logger: Logger
  readonly options: LifecycleOptions
  /** Every history entry is also published here, as it is appended (webhooks, `GET /events`). */
  readonly events?: EventBus | undefined
}

/** What every model's pipeline shares: the one place they reach the server's services. */
export interface LifecycleContext {
  readonly root: string
  readonly metrics: ServerMetrics
  readonly live: LiveFigures
  readonly logger: Logger
  readonly gates: GateRunner
  readonly history: History
  readonly options: LifecycleOptions
  /** Writes the state of every model (coalesced, atomic); a failure is logged and retried. */
  persist(): void
  /** Writes the state for an admin change just made; `undo` runs if that write fails (StatePersister.commit). */
  commit(undo: () => void): Promise<void>
  /**
   * Logs what a listing refused (a warning, once per path and reason, however often it is listed)
   * and skipped (a debug line: once, or on every listing with `everySkip`, which tests and
   * operators at debug level use to follow the passes).
   */
  reportIgnored(ignored: readonly Ignored[], o?: { everySkip?: boolean }): void
  readonly closed: () => boolean
  /** True while this replica holds the gatekeeper lease: only then does it gate and record. */
  readonly gatekeeper: () => boolean
}
