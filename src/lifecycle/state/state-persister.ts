import type { Logger } from '../../log.js'
import { coalesced } from '../coalesced.js'
import { persistState } from './persisted-state.js'
import type { ModelRegistry } from '../versions/model-registry.js'
import type { PersistedState, StateStore } from './state-store.js'

/** After a failed write, state.json is written again after 1 s, then 2 s, 4 s, ... up to a minute. */
const STATE_RETRY_FIRST_MS = 1000
const STATE_RETRY_MAX_MS = 60_000

/** state.json cannot be written: since when, why, and how many writes failed in a row. */
export interface StateWriteFailure {
  readonly since: string
  readonly error: string
  readonly attempts: number
}

/**
 * Keeps state.json in line with memory. Writes coalesce: one in flight, one queued, each of the
 * state as it is when it starts. A failed write is retried with backoff until one succeeds, and
 * `failing` says so meanwhile (/readyz). Automatic changes (a promotion after a gate) keep serving
 * while the disk refuses; an admin change uses `commit`, and is undone if its write fails.
 */
export class StatePersister {
  readonly #store: StateStore
  readonly #registry: ModelRegistry
  readonly #logger: Logger
  #last: PersistedState
  /** Undos of the changes the next write (not started yet) carries. */
  #undos: (() => void)[] = []
  #failing: StateWriteFailure | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #closed = false
  readonly #write = coalesced(() => this.#writeNow())

  readonly #writes: () => boolean

  /** `writes`: false on a follower replica, which never writes state.json (the gatekeeper does). */
  constructor(
    store: StateStore,
    registry: ModelRegistry,
    initial: PersistedState,
    logger: Logger,
    writes: () => boolean = () => true,
  ) {
    this.#store = store
    this.#registry = registry
    this.#last = initial
    this.#logger = logger
    this.#writes = writes
  }

  /** A follower read the gatekeeper's state: what a later write (as gatekeeper) starts from. */
  followed(state: PersistedState): void {
    this.#last = state
  }

  get failing(): StateWriteFailure | undefined {
    return this.#failing
  }

  /** Writes the state soon; a failure is logged and retried, never thrown. */
  persist(): void {
    if (!this.#writes()) return
    void this.#write().catch(() => undefined)
  }

  /**
   * Writes the state now, for a change just made in memory: call it in the same tick as the
   * change's last step, so the write that answers starts after it. If that write fails, `undo` runs
   * before any other write starts (no later write can record the change) and the promise rejects.
   */
  commit(undo: () => void): Promise<void> {
    if (!this.#writes()) return Promise.resolve() // a follower's change follows a recorded one
    this.#undos.push(undo)
    return this.#write()
  }

  /** Writes the state as it is now and waits for it; never rejects. */
  async flush(): Promise<void> {
    if (!this.#writes()) return
    await this.#write().catch(() => undefined)
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#retryTimer)
  }

  async #writeNow(): Promise<void> {
    const undos = this.#undos
    this.#undos = []
    const state = persistState(this.#registry, this.#last)
    try {
      await this.#store.save(state)
    } catch (e) {
      // The latest change first: each undo puts back what was there before its own change.
      for (const undo of undos.reverse()) undo()
      if ((e as Error).name === 'FencedError') {
        // Another replica holds the lease now: its state is the one that counts, not a failure here.
        this.#logger.warn('state_write_fenced', { path: this.#store.path, error: e })
        throw e
      }
      this.#failed(e)
      throw e
    }
    this.#last = state
    if (this.#failing) {
      this.#logger.info('state_write_recovered', {
        path: this.#store.path,
        failedSince: this.#failing.since,
        attempts: this.#failing.attempts,
      })
      this.#failing = undefined
      clearTimeout(this.#retryTimer)
      this.#retryTimer = undefined
    }
  }

  #failed(e: unknown): void {
    const attempts = (this.#failing?.attempts ?? 0) + 1
    const retryInMs = Math.min(STATE_RETRY_MAX_MS, STATE_RETRY_FIRST_MS * 2 ** (attempts - 1))
    this.#failing = {
      since: this.#failing?.since ?? new Date().toISOString(),
      error: (e as Error).message,
      attempts,
    }
    this.#logger.error('state_write_failed', {
      path: this.#store.path,
      error: e,
      attempts,
      retryInMs,
    })
    if (this.#closed || this.#retryTimer !== undefined) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.persist()
    }, retryInMs)
    this.#retryTimer.unref()
  }
}
