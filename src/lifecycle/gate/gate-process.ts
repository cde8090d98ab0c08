/**
 * The gate process: loads and runs candidate models away from the server, so a model that crashes
 * onnxruntime, or hogs the CPU while loading, cannot take requests down with it. One job at a time;
 * exits when the server goes away.
 */
import type { GateJob } from './gate-types.js'
import { GateCancelled, runGate } from './run-gate.js'

export type ToGate = { readonly type: 'run'; readonly id: number; readonly job: GateJob } | { readonly type: 'cancel'; readonly id: number }

export type FromGate =
  | { readonly type: 'stage'; readonly id: number; readonly stage: string }
  | { readonly type: 'done'; readonly id: number; readonly report: import('./gate-types.js').GateReport }
  | { readonly type: 'cancelled'; readonly id: number }
  | { readonly type: 'error'; readonly id: number; readonly message: string }

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
  runGate(job, { cancelled: () => cancelled.has(id), onStage: (stage) => send({ type: 'stage', id, stage }) }).then(
    (report) => send({ type: 'done', id, report }),
    (e: unknown) => send(e instanceof GateCancelled ? { type: 'cancelled', id } : { type: 'error', id, message: (e as Error).stack ?? String(e) }),
  ).finally(() => cancelled.delete(id))
})

// The server is gone (exited, or was killed): nothing left to gate for.
process.on('disconnect', () => process.exit(0))
