/**
 * Runs `task` one at a time, and coalesces: a call made while a run is waiting to start joins that
 * run. However many calls arrive, at most one run is in progress and one is queued, and every call
 * is answered by a run that started after it (so it sees whatever the call was made for).
 */
export function coalesced(task: () => Promise<void>): () => Promise<void> {
  let chain: Promise<void> = Promise.resolve()
  let queued: Promise<void> | undefined
  return function runCoalesced(): Promise<void> {
    if (queued) return queued
    const run = chain.then(() => {
      queued = undefined
      return task()
    })
    queued = run
    chain = run.catch(() => undefined)
    return run
  }
}
