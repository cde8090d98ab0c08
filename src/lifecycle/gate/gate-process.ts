/**
 * The gate process: loads and runs candidate models away from the server, so a model that crashes
 * onnxruntime, or hogs the CPU while loading, cannot take requests down with it. One job at a time;
 * exits when the server goes away.
 */
import type { GateJob } from './gate-types.js'
import { describeFsError } from '../../repository/repository-file.js'
import { GateCancelled, runGate } from './run-gate.js'

export type ToGate =
  | { readonly type: 'run'; readonly id: number; readonly job: GateJob }
  | { readonly type: 'cancel'; readonly id: number }

export type FromGate =
  | { readonly type: 'stage'; readonly id: number; readonly stage: string }
  | {
      readonly type: 'done'
      readonly id: number
      readonly report: import('./gate-types.js').GateReport
    }
  | { readonly type: 'cancelled'; readonly id: number }
  /** A bug, not a verdict: `message` is one line for the API, `stack` goes to the server's log. */
  | {
      readonly type: 'error'
      readonly id: number
      readonly message: string
      readonly stack: string | undefined
    }

const cancelled = new Set<number>()

function send(message: FromGate): void {
  process.send?.(message)
}

process.on('message', (message: ToGate) => {
  if (message.type === 'cancel') {
    cancelled.add(message.id)
    return
  }
  const { id, job } = message
  runGate(job, {
    cancelled: () => cancelled.has(id),
    onStage: (stage) => send({ type: 'stage', id, stage }),
  })
    .then(
      (report) => send({ type: 'done', id, report }),
      (e: unknown) =>
        send(
          e instanceof GateCancelled
            ? { type: 'cancelled', id }
            : { type: 'error', id, message: oneLine(e), stack: (e as Error)?.stack },
        ),
    )
    .finally(() => cancelled.delete(id))
})

/** `RangeError: Invalid typed array length: 1000000000000`; a file system error without its path. */
function oneLine(e: unknown): string {
  if (!(e instanceof Error)) return String(e).split('\n', 1)[0]!
  const text = (e as NodeJS.ErrnoException).code !== undefined ? describeFsError(e) : e.message
  return `${e.name}: ${text.split('\n', 1)[0]}`
}

// The server is gone (exited, or was killed): nothing left to gate for.
process.on('disconnect', () => process.exit(0))
