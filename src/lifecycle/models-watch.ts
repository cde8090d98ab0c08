import type { Logger } from '../log.js'
import { isInside } from '../repository/layout.js'
import { scanRepository, type Ignored, type ModelSource } from '../repository/scanner.js'
import { watchRepository } from '../repository/watcher.js'
import { coalesced } from './coalesced.js'

export interface ModelsWatchOptions {
  readonly root: string
  readonly modelsDir: string
  /** Inside the models directory, it is not a model. */
  readonly stateDir: string
  readonly poll: boolean
  readonly rescanIntervalMs: number
  readonly logger: Logger
  readonly reportIgnored: (ignored: readonly Ignored[]) => void
  /** A listing of the whole directory: every model in it (new ones too). */
  readonly listed: (models: readonly ModelSource[]) => void
  /** A file-system event under a model's folder (`model` undefined: at the top level). */
  readonly changed: (model: string | undefined, event: string, depth: number) => void
}

/**
 * Notices what lands in the models directory: file-system events (a trigger only) and a listing
 * of the whole directory every `rescanIntervalMs`, in case the file system dropped an event.
 * What to do about it is the caller's (`listed`, `changed`).
 */
export class ModelsWatch {
  readonly #o: ModelsWatchOptions
  #watcher: { ready: Promise<void>; close(): Promise<void> } | undefined
  #timer: NodeJS.Timeout | undefined
  #closed = false
  /** One listing at a time; requests while one waits join it. */
  readonly #rescan = coalesced(() => this.#rescanNow())

  constructor(options: ModelsWatchOptions) {
    this.#o = options
  }

  /** Starts watching; resolves once the watcher is ready (so nothing landing after is missed). */
  async watch(): Promise<void> {
    const o = this.#o
    this.#watcher = watchRepository({
      root: o.root,
      ignore: [o.stateDir],
      poll: o.poll,
      logger: o.logger,
      onEvent: (e) => {
        if (!this.#closed) o.changed(e.model, e.event, e.parts.length)
      },
    })
    await this.#watcher.ready
  }

  /** Lists the directory now, then every `rescanIntervalMs`. */
  startRescans(): void {
    this.#timer = setInterval(() => void this.#rescan(), this.#o.rescanIntervalMs)
    this.#timer.unref()
    void this.#rescan()
  }

  /** Lists the whole directory (joining a listing that waits to start). */
  rescan(): Promise<void> {
    return this.#rescan()
  }

  /** The models a listing found, without the state directory if it lies inside. */
  models(sources: readonly ModelSource[]): ModelSource[] {
    return sources.filter((s) => !isInside(this.#o.stateDir, s.dir))
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.#watcher?.close()
  }

  async #rescanNow(): Promise<void> {
    if (this.#closed) return
    try {
      const scan = await scanRepository(this.#o.modelsDir)
      this.#o.reportIgnored(scan.ignored)
      this.#o.listed(this.models(scan.models))
    } catch (e) {
      this.#o.logger.warn('rescan_failed', { error: e })
    }
  }
}
