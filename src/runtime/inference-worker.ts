/**
 * An inference worker: one session of one version, on a thread of its own. It is created from the
 * version's bytes (shared memory, one copy for every worker), then runs what the main thread sends,
 * one run at a time. Tensors arrive and leave as transferred buffers.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { ModelLoadError, ModelSession, type SessionOptions } from './session.js'
import type { Signature } from './signature.js'
import { pack, unpack, type WireTensors } from './wire-tensor.js'
// The worker warms its own session the way the main thread warms one (the same steps and report).
import { warmUpRuns, type WarmUpOutcome } from './warm-up.js'

export interface WorkerStart {
  /** A view of the version's SharedArrayBuffer. */
  readonly bytes: Uint8Array
  readonly options: SessionOptions
}

/** Warm-up as the worker runs it on its own session: synthesized inputs are made in the worker. */
export interface WarmPlan {
  readonly runs: number
  readonly batchSizes: readonly number[]
  /** Smoke inputs, for a model that refuses the synthesized ones. */
  readonly fallbackFeeds: readonly WireTensors[]
}

export type ToWorker =
  | {
      readonly type: 'run'
      readonly id: number
      readonly feeds: WireTensors
      readonly outputs: readonly string[]
    }
  | { readonly type: 'warm'; readonly plan: WarmPlan }
  | { readonly type: 'release' }

export type FromWorker =
  | { readonly type: 'ready'; readonly signature: Signature }
  | {
      readonly type: 'load_failed'
      readonly reason: ModelLoadError['reason']
      readonly message: string
    }
  | { readonly type: 'result'; readonly id: number; readonly fetches: WireTensors }
  | { readonly type: 'failed'; readonly id: number; readonly message: string }
  | { readonly type: 'warmed'; readonly result: WarmUpOutcome }

const port = parentPort!
const start = workerData as WorkerStart

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer)
}

let session: ModelSession
try {
  session = await ModelSession.create(start.bytes, start.options)
  send({ type: 'ready', signature: session.signature })
} catch (e) {
  const reason = e instanceof ModelLoadError ? e.reason : 'invalid_model'
  send({ type: 'load_failed', reason, message: (e as Error).message })
  port.close()
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'release') {
    void session.release().finally(() => port.close())
    return
  }
  if (m.type === 'warm') {
    const { runs, batchSizes, fallbackFeeds } = m.plan
    void warmUpRuns(session, {
      runs,
      batchSizes,
      fallbackFeeds: fallbackFeeds.map((f) => unpack(f)),
    }).then((result) => send({ type: 'warmed', result }))
    return
  }
  // Inputs that do not make tensors (a length that does not fit the dims) fail this run only.
  Promise.resolve()
    .then(() => session.run(unpack(m.feeds), m.outputs))
    .then(
      (fetches) => {
        const packed = pack(fetches, true)
        send({ type: 'result', id: m.id, fetches: packed.tensors }, packed.transfer)
      },
      (e: unknown) => send({ type: 'failed', id: m.id, message: (e as Error).message }),
    )
})
