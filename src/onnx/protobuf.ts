/**
 * The protobuf wire format, as much of it as ONNX needs: enough to write small models (tests, the
 * example repository, benchmarks) and to read a model's graph inputs and outputs without decoding
 * its weights. https://protobuf.dev/programming-guides/encoding/
 */

const WireType = { varint: 0, i64: 1, len: 2, i32: 5 } as const

/** Appends fields to a growing buffer. Nested messages are written by encoding them first. */
export class ProtoWriter {
  #chunks: Uint8Array[] = []
  #length = 0

  #push(bytes: Uint8Array): void {
    this.#chunks.push(bytes)
    this.#length += bytes.length
  }

  #tag(field: number, wireType: number): void {
    this.#varint((BigInt(field) << 3n) | BigInt(wireType))
  }

  #varint(value: bigint): void {
    // Negative int32/int64 values are written as their 64-bit two's complement, per the spec.
    let v = BigInt.asUintN(64, value)
    const out: number[] = []
    do {
      let byte = Number(v & 0x7fn)
      v >>= 7n
      if (v !== 0n) byte |= 0x80
      out.push(byte)
    } while (v !== 0n)
    this.#push(Uint8Array.from(out))
  }

  varint(field: number, value: number | bigint): this {
    this.#tag(field, WireType.varint)
    this.#varint(BigInt(value))
    return this
  }

  float(field: number, value: number): this {
    this.#tag(field, WireType.i32)
    const bytes = new Uint8Array(4)
    new DataView(bytes.buffer).setFloat32(0, value, true)
    this.#push(bytes)
    return this
  }

  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WireType.len)
    this.#varint(BigInt(value.length))
    this.#push(value)
    return this
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value))
  }

  message(field: number, write: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter()
    write(inner)
    return this.bytes(field, inner.finish())
  }

  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter()
    for (const v of values) inner.#varint(BigInt(v))
    return this.bytes(field, inner.finish())
  }

  packedFloats(field: number, values: ArrayLike<number>): this {
    const bytes = new Uint8Array(values.length * 4)
    const view = new DataView(bytes.buffer)
    for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true)
    return this.bytes(field, bytes)
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#length)
    let offset = 0
    for (const chunk of this.#chunks) {
      out.set(chunk, offset)
      offset += chunk.length
    }
    return out
  }
}

export interface ProtoField {
  readonly field: number
  readonly wireType: number
  /** varint / fixed values */
  readonly int: bigint
  /** length-delimited payload (a view into the source buffer, not a copy) */
  readonly bytes: Uint8Array
}

class ProtoDecodeError extends Error {}

/** Iterates the fields of one message. Throws ProtoDecodeError on malformed input. */
export function* readFields(buf: Uint8Array): Generator<ProtoField> {
  let pos = 0
  const varint = (): bigint => {
    let result = 0n
    let shift = 0n
    for (;;) {
      if (pos >= buf.length) throw new ProtoDecodeError('truncated varint')
      const byte = buf[pos++]!
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result
      shift += 7n
      if (shift > 63n) throw new ProtoDecodeError('varint too long')
    }
  }
  const empty = new Uint8Array(0)
  while (pos < buf.length) {
    const key = varint()
    const field = Number(key >> 3n)
    const wireType = Number(key & 7n)
    if (field === 0) throw new ProtoDecodeError('field number 0')
    switch (wireType) {
      case WireType.varint:
        yield { field, wireType, int: varint(), bytes: empty }
        break
      case WireType.i64: {
        if (pos + 8 > buf.length) throw new ProtoDecodeError('truncated fixed64')
        const int = new DataView(buf.buffer, buf.byteOffset + pos, 8).getBigUint64(0, true)
        pos += 8
        yield { field, wireType, int, bytes: empty }
        break
      }
      case WireType.len: {
        const len = Number(varint())
        if (pos + len > buf.length) throw new ProtoDecodeError('truncated length-delimited field')
        const bytes = buf.subarray(pos, pos + len)
        pos += len
        yield { field, wireType, int: 0n, bytes }
        break
      }
      case WireType.i32: {
        if (pos + 4 > buf.length) throw new ProtoDecodeError('truncated fixed32')
        const int = BigInt(new DataView(buf.buffer, buf.byteOffset + pos, 4).getUint32(0, true))
        pos += 4
        yield { field, wireType, int, bytes: empty }
        break
      }
      default:
        throw new ProtoDecodeError(`unsupported wire type ${wireType}`)
    }
  }
}

export function decodeString(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes)
}
