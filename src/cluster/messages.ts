/**
 * What the primary of `modelgate serve --workers N` and its workers say to each other over the
 * cluster's IPC channel, besides prom-client's own metric requests (`prom-client:*`).
 */

/** A worker to the primary. */
export type WorkerMessage =
  /** Its server listens: from now on a stop is asked with `stop`, and its end is a crash or a stop. */
  | { readonly type: 'modelgate:serving' }
  /** GET /metrics reached it: it wants every worker's metrics, aggregated. */
  | { readonly type: 'modelgate:metrics'; readonly id: number }

/** The primary to a worker. */
export type PrimaryMessage =
  /** Drain and exit 0, as on a SIGTERM; `reason`: the signal the primary received, or why it stops. */
  | { readonly type: 'modelgate:stop'; readonly reason: string }
  /** The answer to `modelgate:metrics` with the same id: the text, or why there is none. */
  | {
      readonly type: 'modelgate:metrics'
      readonly id: number
      readonly text?: string
      readonly error?: string
    }

/** A message of ours (the channel also carries Node's and prom-client's). */
export function isOurs<T extends { readonly type: string }>(message: unknown): message is T {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { type?: unknown }).type === 'string' &&
    (message as { type: string }).type.startsWith('modelgate:')
  )
}
