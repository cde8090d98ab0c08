/**
 * An inference worker: one session of one version, on a thread of its own. It is created from the
 * version's bytes (shared memory, one copy for every worker), then runs what the main thread sends,
 * one run at a time. Tensors arrive and leave as transferred buffers.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { ModelLoadError, ModelSession, type SessionOptions } from './session.js'
import type { Signature } from './signature.js'
import type { ModelInfo } from '../onnx/model-info.js'
import { pack, unpack, type WireTensors } from './wire-tensor.js'

export interface WorkerStart {
  /** A view of the version's SharedArrayBuffer. */
  readonly bytes: Uint8Array
  readonly options: SessionOptions
}

export type ToWorker =
  | { readonly type: 'run'; readonly id: number; readonly feeds: WireTensors; readonly outputs: readonly string[] }
  | { readonly type: 'release' }

export type FromWorker =
  | { readonly type: 'ready'; readonly signature: Signature; readonly info: ModelInfo | undefined }
  | { readonly type: 'load_failed'; readonly reason: ModelLoadError['reason']; readonly message: string }
  | { readonly type: 'result'; readonly id: number; readonly fetches: WireTensors }
  | { readonly type: 'failed'; readonly id: number; readonly message: string }

const port = parentPort!
const start = workerData as WorkerStart

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer)
}

let session: ModelSession
try {
  session = await ModelSession.create(start.bytes, start.options)
  send({ type: 'ready', signature: session.signature, info: session.info })
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
  session.run(unpack(m.feeds), m.outputs).then(
    (fetches) => {
      const packed = pack(fetches, true)
      send({ type: 'result', id: m.id, fetches: packed.tensors }, packed.transfer)
    },
    (e: unknown) => send({ type: 'failed', id: m.id, message: (e as Error).message }),
  )
})
