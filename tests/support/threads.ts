import { existsSync, readdirSync } from 'node:fs'

/**
 * The threads of this process, from Linux /proc: worker threads and their sessions' threads among
 * them, so a test can tell which threads a version or a pool started and whether they ended.
 */
export function threadIds(): Set<string> {
  return new Set(readdirSync('/proc/self/task'))
}

/** The threads started since `before` (an earlier threadIds()). */
export function threadsSince(before: ReadonlySet<string>): string[] {
  return [...threadIds()].filter((id) => !before.has(id))
}

/** Those of `ids` that are still running. */
export function liveThreads(ids: Iterable<string>): string[] {
  return [...ids].filter((id) => existsSync(`/proc/self/task/${id}`))
}
