import type { Logger } from '../log.js'
import type { Ignored } from '../repository/scanner.js'

/**
 * What listings of the models directory refused and skipped, logged without repeating: a refusal
 * is one warning per path and reason however often it is listed; a skip is a debug line, once, or
 * on every listing with `everySkip` (which tests and operators at debug level use to follow passes).
 */
export class IgnoredPaths {
  readonly #logger: Logger
  readonly #reported = new Set<string>()

  constructor(logger: Logger) {
    this.#logger = logger
  }

  report(ignored: readonly Ignored[], o?: { everySkip?: boolean }): void {
    for (const i of ignored) {
      const key = `${i.path}\0${i.reason}`
      const seen = this.#reported.has(key)
      this.#reported.add(key)
      if (i.refused) {
        if (!seen) this.#logger.warn('path_refused', { path: i.path, reason: i.reason })
      } else if (!seen || o?.everySkip) {
        this.#logger.debug('path_ignored', { path: i.path, reason: i.reason })
      }
    }
  }
}
