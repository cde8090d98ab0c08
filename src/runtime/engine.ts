import type { Executor, RunOptions } from './batcher.js'
import type { Feeds, Fetches } from './feeds.js'
import type { Signature } from './signature.js'

/**
 * Where a version's sessions run: `main`, one session on the event loop's thread (no hand-off, the
 * fastest for small models), or `workers`, a pool of worker threads with a session each (the event
 * loop stays free while a heavy model runs, and a run can be ended by its timeout).
 */
export type ExecutionMode = 'main' | 'workers'

/** What serves one version: a session on this thread, or a pool of them in worker threads. */
export interface Engine extends Executor {
  readonly mode: ExecutionMode
  readonly signature: Signature
  /** A client gone before its run started (`clientGone`): dropped with RequestCancelledError. */
  run(feeds: Feeds, outputs: readonly string[], options?: RunOptions): Promise<Fetches>
  readonly released: boolean
  /** Frees the sessions (and ends the workers); GC does not. */
  release(): Promise<void>
}
