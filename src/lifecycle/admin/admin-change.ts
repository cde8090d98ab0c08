import { StateWriteFailedError } from '../../errors.js'
import type { History, HistoryEntry } from '../state/history.js'
import type { LoadedVersion } from '../versions/loaded-version.js'
import type { ModelVersions } from '../versions/model-versions.js'
import type { Outbox, VersionsSnapshot } from '../versions/transitions.js'

export interface AdminChangeContext {
  readonly history: History
  /** StatePersister.commit */
  readonly commit: (undo: () => void) => Promise<void>
}

/**
 * An admin change to one model (a rollback, a promotion) stands only once state.json records it:
 * an answer of "done" means a crash right after cannot bring the old version back. Until then the
 * change can be undone: the versions it takes out of service are held (not released) and its
 * history entries wait. If the write fails, the model is put back as it was, the version that
 * served before serves again, and `committed` throws state_write_failed.
 *
 * Begin it right before the swap, with no await in between, so nothing else changes the model
 * between the picture taken here and the change.
 */
export class AdminChange implements Outbox {
  readonly #versions: ModelVersions
  readonly #x: AdminChangeContext
  readonly #before: VersionsSnapshot
  readonly #leaving: LoadedVersion[] = []
  readonly #afterCommit: (() => void)[] = []
  #recorded: Promise<void> | undefined

  constructor(versions: ModelVersions, context: AdminChangeContext) {
    this.#versions = versions
    this.#x = context
    this.#before = versions.snapshot()
  }

  /** Takes `version` out of service once the change is recorded; until then it can come back. */
  retire(version: LoadedVersion): void {
    this.#leaving.push(version)
  }

  /** Appended once the change is recorded: an undone change leaves no history entry. */
  history(entry: Omit<HistoryEntry, 'time'>): void {
    this.#afterCommit.push(() => void this.#x.history.append(entry))
  }

  /** The change is complete in memory: its write starts now (the same tick as its last step). */
  persist(): void {
    this.#recorded ??= this.#x.commit(() => this.#versions.revert(this.#before))
  }

  /** Resolves once state.json records the change; else the change has been undone, and this throws. */
  async committed(): Promise<void> {
    this.persist()
    try {
      await this.#recorded
    } catch (e) {
      const active = this.#before.active
      const served = active
        ? `version ${active.version} serves as before`
        : 'nothing serves, as before'
      throw new StateWriteFailedError(
        `the change was not made: the state file could not be written (${(e as Error).message}); model '${this.#versions.name}': ${served}`,
        { cause: e, details: { error: (e as NodeJS.ErrnoException).code ?? (e as Error).message } },
      )
    }
    for (const v of this.#leaving) v.retire() // released once their last requests end
    for (const effect of this.#afterCommit) effect()
  }
}
