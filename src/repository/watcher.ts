import { watch, type FSWatcher } from 'chokidar'
import { relative, sep } from 'node:path'
import type { Logger } from '../log.js'
import { isInside } from './layout.js'

export interface WatchEvent {
  readonly event: string
  /** The model folder the event is under, or undefined for the models directory itself. */
  readonly model: string | undefined
  /** Path below the models directory, split: ['iris', '3', 'model.onnx']. */
  readonly parts: readonly string[]
}

export interface RepositoryWatcherOptions {
  readonly root: string
  /** Folders (absolute) whose events mean nothing here: the state directory. */
  readonly ignore: readonly string[]
  readonly poll: boolean
  readonly logger: Logger
  readonly onEvent: (e: WatchEvent) => void
}

/**
 * chokidar as a trigger only: it says which model folder changed, and the model's pipeline
 * re-lists the folder. Events can be dropped, duplicated or reordered (a file renamed into a
 * folder that just appeared may never be reported); the listing is what counts. No
 * awaitWriteFinish: stability is judged by the pipeline, the same way for files found at start
 * and files that arrive later.
 */
export function watchRepository(o: RepositoryWatcherOptions): {
  ready: Promise<void>
  close(): Promise<void>
} {
  const watcher: FSWatcher = watch(o.root, {
    ignoreInitial: true,
    depth: 2,
    // Deletions are reported at once rather than ~100 ms late; the listing sorts out renames.
    atomic: false,
    usePolling: o.poll,
    interval: 1000,
    binaryInterval: 1000,
    ignored: (path: string) => o.ignore.some((dir) => isInside(dir, path)),
  })
  watcher.on('all', (event, path) => {
    const rel = relative(o.root, path)
    if (rel === '' || rel.startsWith('..')) return
    const parts = rel.split(sep)
    o.onEvent({ event, model: parts[0], parts })
  })
  watcher.on('error', (e) => o.logger.warn('watch_error', { error: e }))
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
  return {
    ready,
    close: () => watcher.close(),
  }
}
