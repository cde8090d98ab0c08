import { InvalidShapeError, InvalidValueError } from '../errors.js'
import {
  allocate,
  ELEMENT_TYPE_INFO,
  type ElementType,
  type TensorStorage,
} from '../runtime/element-type.js'

/**
 * The binary tensor data extension (Triton's, which KServe clients use): raw little-endian tensor
 * bytes after the JSON header; BYTES elements each a 4-byte little-endian length and the bytes;
 * BOOL one byte per element.
 * https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
 */

/** The tensor a binary section holds, checked against the element count the shape implies. */
export function decodeBinaryTensor(
  bytes: Buffer,
  type: ElementType,
  count: number,
  where: string,
): TensorStorage {
  if (type === 'string') {
    // Every element carries at least its 4-byte length: check before allocating for the shape.
    if (count * 4 > bytes.length) {
      throw new InvalidShapeError(
        `${where}: the shape holds ${count} BYTES elements, the ${bytes.length} bytes of data cannot`,
      )
    }
    const out = new Array<string>(count)
    let pos = 0
    for (let i = 0; i < count; i++) {
      if (pos + 4 > bytes.length)
        throw new InvalidShapeError(`${where}: the BYTES data ends before element ${i} of ${count}`)
      const length = bytes.readUInt32LE(pos)
      pos += 4
      if (pos + length > bytes.length)
        throw new InvalidShapeError(
          `${where}: BYTES element ${i} says ${length} bytes, only ${bytes.length - pos} remain`,
        )
      out[i] = textOf(bytes.subarray(pos, pos + length), `${where}: BYTES element ${i}`)
      pos += length
    }
    if (pos !== bytes.length)
      throw new InvalidShapeError(
        `${where}: ${bytes.length - pos} bytes left after ${count} BYTES elements`,
      )
    return out
  }
  const size = ELEMENT_TYPE_INFO[type].bytes
  if (bytes.length !== count * size) {
    throw new InvalidShapeError(
      `${where}: the shape holds ${count} elements (${count * size} bytes as ${type}), binary_data_size is ${bytes.length}`,
    )
  }
  const data = allocate(type, count) as Exclude<TensorStorage, string[]>
  // Copy into a fresh, aligned buffer: the body's offset need not be a multiple of the element size.
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes)
  if (type === 'bool') {
    for (let i = 0; i < data.length; i++) {
      const v = (data as Uint8Array)[i]!
      if (v > 1)
        throw new InvalidValueError(`${where}: BOOL element ${i} is the byte ${v}, not 0 or 1`)
    }
  }
  return data
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * onnxruntime-node carries string tensors as text: bytes that are not UTF-8 would be replaced,
 * and a NUL would cut the element short. Both are refused rather than silently changed.
 */
export function textOf(bytes: Uint8Array, where: string): string {
  let text: string
  try {
    text = UTF8.decode(bytes)
  } catch {
    throw new InvalidValueError(
      `${where} is not UTF-8 text, and onnxruntime-node carries strings as text`,
    )
  }
  if (text.includes('\u0000'))
    throw new InvalidValueError(
      `${where} holds a NUL byte, which onnxruntime-node would cut the string at`,
    )
  return text
}

/** A tensor's data as the binary extension lays it out. */
export function encodeBinaryTensor(data: TensorStorage, type: ElementType): Buffer {
  if (type === 'string') {
    const parts = (data as string[]).map((s) => Buffer.from(s, 'utf8'))
    const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0))
    let pos = 0
    for (const p of parts) {
      out.writeUInt32LE(p.length, pos)
      p.copy(out, pos + 4)
      pos += 4 + p.length
    }
    return out
  }
  const typed = data as Exclude<TensorStorage, string[]>
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength)
}
