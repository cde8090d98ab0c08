import { Tensor } from 'onnxruntime-node'
import type { TensorStorage } from './element-type.js'

/**
 * A tensor as it crosses between threads: its data travels as a transferred ArrayBuffer (moved,
 * not copied) or, for strings, as a structured-cloned array. Never JSON.
 */
export interface WireTensor {
  readonly type: Tensor.Type
  readonly dims: readonly number[]
  readonly data: TensorStorage
}

export type WireTensors = Record<string, WireTensor>

export interface Packed {
  readonly tensors: WireTensors
  /** The buffers to list in postMessage's transfer list: after the call, they belong to the other thread. */
  readonly transfer: ArrayBuffer[]
}

/**
 * Tensors ready for postMessage. `own: true` moves a tensor's buffer when the tensor is its only
 * user (the whole buffer, not shared memory): the sender must not touch those tensors again. Views
 * into a larger buffer (a request body, Node's Buffer pool) are copied into a buffer of their own
 * first, so nothing beside the tensor is ever moved. `own: false` copies every buffer: the sender
 * keeps its tensors (warm-up and the batching check run the same inputs again).
 */
export function pack(tensors: Record<string, Tensor>, own: boolean): Packed {
  const out = Object.create(null) as WireTensors
  const transfer = new Set<ArrayBuffer>()
  for (const name in tensors) {
    const t = tensors[name]!
    let data = t.data as TensorStorage
    if (!Array.isArray(data)) {
      // An empty (or detached) buffer is never moved: copying nothing costs nothing, and a
      // detached buffer in a transfer list loses the whole message.
      const wholeBuffer =
        data.byteLength > 0 &&
        data.byteOffset === 0 &&
        data.byteLength === data.buffer.byteLength &&
        data.buffer instanceof ArrayBuffer
      if (!own || !wholeBuffer || transfer.has(data.buffer as ArrayBuffer)) data = copyOf(data)
      transfer.add(data.buffer as ArrayBuffer)
    }
    out[name] = { type: t.type, dims: t.dims, data }
  }
  return { tensors: out, transfer: [...transfer] }
}

/** A copy in a buffer of its own. A Node Buffer's slice() is a view of the same memory, not a copy. */
function copyOf(data: Exclude<TensorStorage, string[]>): Exclude<TensorStorage, string[]> {
  return Buffer.isBuffer(data) ? new Uint8Array(data) : data.slice()
}

export function unpack(tensors: WireTensors): Record<string, Tensor> {
  const out = Object.create(null) as Record<string, Tensor>
  for (const name in tensors) {
    const w = tensors[name]!
    out[name] = new Tensor(w.type as never, w.data as never, w.dims)
  }
  return out
}
