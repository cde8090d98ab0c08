import type { ServerResponse } from 'node:http'

/**
 * Aborts when the client closes its connection before its answer was sent: work queued for it
 * (a batch slot, a worker) is dropped instead of run for nobody.
 */
export function clientGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController()
  res.once('close', () => {
    if (!res.writableFinished) controller.abort()
  })
  return controller.signal
}
