import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { gunzipSync, inflateSync } from 'node:zlib'

/**
 * Helpers for the V2 / Open Inference Protocol tests, written from the protocol texts, not from
 * modelgate's code: the KServe V2 REST spec ("Tensor Data Types", "Tensor Data") and Triton's binary
 * tensor data extension (little-endian, row major, no padding; BOOL one byte; BYTES a 4-byte
 * little-endian unsigned length then the bytes). Nothing here imports from src/ or dist/.
 */

/** KServe V2 "Tensor Data Types": every datatype and its size in bytes (BYTES is variable). */
export const V2_DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const
export type V2Datatype = (typeof V2_DATATYPES)[number]

const V2_SIZE: Readonly<Record<Exclude<V2Datatype, 'BYTES'>, number>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
}

/** The ONNX element type (onnxruntime-js names, as the model builder and the manifest use them) of each V2 datatype. */
export const ONNX_OF_V2 = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
} as const satisfies Record<V2Datatype, string>

export const V2_OF_ONNX = Object.fromEntries(
  Object.entries(ONNX_OF_V2).map(([v2, onnx]) => [onnx, v2]),
) as Record<string, V2Datatype>

/** A JSON-like value whose 64-bit integers may be BigInt. */
export type Value = number | bigint | string | boolean | null | Value[] | { [key: string]: Value }

// ---------------------------------------------------------------------------------------------
// HTTP

export interface RawResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The body as received (still compressed if Content-Encoding says so). */
  readonly raw: Buffer
  /** The body after Content-Encoding is undone. */
  readonly body: Buffer
  readonly text: string
}

/**
 * One HTTP request with node:http, so the test decides every header (fetch adds Accept-Encoding and
 * Content-Type of its own; the Triton client sends neither unless asked).
 */
export function http(
  method: string,
  url: string,
  o: { body?: Buffer | string; headers?: Record<string, string | number> } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const body =
      o.body === undefined
        ? undefined
        : Buffer.isBuffer(o.body)
          ? o.body
          : Buffer.from(o.body, 'utf8')
    const headers: Record<string, string | number> = { ...(o.headers ?? {}) }
    if (body !== undefined) headers['content-length'] = body.length
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const raw = Buffer.concat(chunks)
        const encoding = res.headers['content-encoding']
        const decoded =
          encoding === 'gzip' ? gunzipSync(raw) : encoding === 'deflate' ? inflateSync(raw) : raw
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          raw,
          body: decoded,
          text: decoded.toString('utf8'),
        })
      })
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

export const get = (url: string, headers: Record<string, string> = {}) =>
  http('GET', url, { headers })

/** POST a JSON body (a string is sent as is, so a test can write exact number literals). */
export function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const text = typeof body === 'string' ? body : toJsonText(body as Value)
  return http('POST', url, {
    body: text,
    headers: { 'content-type': 'application/json', ...headers },
  })
}

/**
 * A binary-extension request: the JSON header, then each binary section in input order, with
 * Inference-Header-Content-Length giving the JSON header's length in bytes.
 */
export function postBinary(
  url: string,
  header: unknown,
  sections: readonly Buffer[],
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const json = Buffer.from(
    typeof header === 'string' ? header : toJsonText(header as Value),
    'utf8',
  )
  return http('POST', url, {
    body: Buffer.concat([json, ...sections]),
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': json.length,
      ...headers,
    },
  })
}

/** JSON text in which BigInt values are written as plain number literals (as a V2 client writes INT64). */
function toJsonText(value: Value | unknown): string {
  const marked = JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'bigint' ? `\u0000big:${v}\u0000` : v,
  )
  return marked.replace(/"\\u0000big:(-?\d+)\\u0000"/g, '$1')
}

/**
 * JSON.parse, except that integer literals beyond 2^53 come back as BigInt instead of rounded
 * (a small parser of its own: Node 20's JSON.parse gives no access to a number's source text).
 */
export function parseExactJson(text: string): Value {
  let pos = 0
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${pos} in ${text.slice(Math.max(0, pos - 20), pos + 20)}`)
  }
  const ws = () => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos]!)) pos++
  }
  const value = (): Value => {
    ws()
    const c = text[pos]
    if (c === '{') {
      pos++
      const out: { [key: string]: Value } = {}
      ws()
      if (text[pos] === '}') return (pos++, out)
      for (;;) {
        ws()
        const key = value()
        if (typeof key !== 'string') fail('expected a key')
        ws()
        if (text[pos++] !== ':') fail("expected ':'")
        Object.defineProperty(out, key as string, {
          value: value(),
          enumerable: true,
          writable: true,
          configurable: true,
        })
        ws()
        const d = text[pos++]
        if (d === '}') return out
        if (d !== ',') fail("expected ',' or '}'")
      }
    }
    if (c === '[') {
      pos++
      const out: Value[] = []
      ws()
      if (text[pos] === ']') return (pos++, out)
      for (;;) {
        out.push(value())
        ws()
        const d = text[pos++]
        if (d === ']') return out
        if (d !== ',') fail("expected ',' or ']'")
      }
    }
    if (c === '"') {
      let i = pos + 1
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
      const s = JSON.parse(text.slice(pos, i + 1)) as string
      pos = i + 1
      return s
    }
    const m = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|true|false|null/y
    m.lastIndex = pos
    const found = m.exec(text)
    if (!found) return fail('unexpected token')
    pos = m.lastIndex
    const literal = found[0]
    if (literal === 'true') return true
    if (literal === 'false') return false
    if (literal === 'null') return null
    const n = Number(literal)
    if (found[1] === undefined && found[2] === undefined && !Number.isSafeInteger(n))
      return BigInt(literal)
    return n
  }
  const out = value()
  ws()
  if (pos !== text.length) fail('text after the JSON value')
  return out
}

/** The error body every V2 error must have: exactly `{"error": <non-empty string>}`. */
export function v2Error(r: RawResponse): string {
  const body = JSON.parse(r.text) as Record<string, unknown>
  if (
    Object.keys(body).join() !== 'error' ||
    typeof body.error !== 'string' ||
    body.error.length === 0
  ) {
    throw new Error(`not a V2 error body (status ${r.status}): ${r.text}`)
  }
  return body.error
}

/**
 * The literal text of every element of one output's "data" in a raw JSON response (nesting
 * brackets dropped), so 64-bit values can be compared digit for digit.
 */
export function rawDataLiterals(text: string, output: string): string[] {
  const at = text.indexOf(`"name":${JSON.stringify(output)}`)
  if (at < 0) throw new Error(`no output '${output}' in ${text}`)
  // "data" of this output object: the first one after its name, or before it in the same object.
  const objectStart = text.lastIndexOf('{', at)
  let start = text.indexOf('"data"', objectStart)
  if (start < 0) throw new Error(`output '${output}' has no "data"`)
  start = text.indexOf('[', start)
  let depth = 0
  let end = start
  for (; end < text.length; end++) {
    if (text[end] === '[') depth++
    else if (text[end] === ']' && --depth === 0) break
  }
  return text
    .slice(start, end + 1)
    .split(/[\s,[\]]+/)
    .filter((s) => s !== '')
}

// ---------------------------------------------------------------------------------------------
// Responses

export interface V2Output {
  readonly name: string
  readonly datatype: string
  readonly shape: number[]
  readonly parameters?: Record<string, Value>
  readonly data?: Value[]
}

export interface V2InferResponse {
  readonly model_name: string
  readonly model_version?: string
  readonly id?: string
  readonly outputs: V2Output[]
  readonly [key: string]: unknown
}

export interface SplitResponse {
  readonly header: V2InferResponse
  /** The JSON header's own text. */
  readonly headerText: string
  /** Each binary output's bytes, found as Triton's client finds them: binary_data_size in output order. */
  readonly binary: Map<string, Buffer>
  /** Bytes after the JSON header. */
  readonly binaryLength: number
}

/** A response as the Triton client reads it: Inference-Header-Content-Length splits JSON from binary. */
export function splitResponse(r: RawResponse): SplitResponse {
  const lengthHeader = r.headers['inference-header-content-length']
  const headerLength = lengthHeader === undefined ? r.body.length : Number(lengthHeader)
  const headerText = r.body.subarray(0, headerLength).toString('utf8')
  const header = parseExactJson(headerText) as unknown as V2InferResponse
  const binary = new Map<string, Buffer>()
  let offset = headerLength
  for (const o of header.outputs ?? []) {
    const size = o.parameters?.binary_data_size
    if (size === undefined) continue
    if (typeof size !== 'number')
      throw new Error(`output '${o.name}': binary_data_size ${String(size)} is not a number`)
    binary.set(o.name, r.body.subarray(offset, offset + size))
    offset += size
  }
  return { header, headerText, binary, binaryLength: r.body.length - headerLength }
}

/** Nested data -> flat, row major (the spec allows either form in a response). */
export function flat(data: Value[] | undefined): Value[] {
  if (!data) return []
  return data.flatMap((v) => (Array.isArray(v) ? flat(v) : [v]))
}

// ---------------------------------------------------------------------------------------------
// Binary tensor data (Triton's binary tensor data extension)

/** Test values in the form JSON and binary both describe: bigint for 64-bit ints, boolean for BOOL, string for BYTES. */
export type Element = number | bigint | boolean | string

/** Little-endian bytes of a tensor's elements in row-major order, as the extension lays them out. */
export function encodeBinary(datatype: V2Datatype, values: readonly Element[]): Buffer {
  if (datatype === 'BYTES') {
    return Buffer.concat(
      values.map((v) => {
        const bytes = Buffer.from(String(v), 'utf8')
        const length = Buffer.alloc(4)
        length.writeUInt32LE(bytes.length)
        return Buffer.concat([length, bytes])
      }),
    )
  }
  const size = V2_SIZE[datatype]
  const out = Buffer.alloc(values.length * size)
  values.forEach((v, i) => {
    const at = i * size
    switch (datatype) {
      case 'BOOL':
        out.writeUInt8(v === true || v === 1 ? 1 : 0, at)
        break
      case 'UINT8':
        out.writeUInt8(Number(v), at)
        break
      case 'UINT16':
        out.writeUInt16LE(Number(v), at)
        break
      case 'UINT32':
        out.writeUInt32LE(Number(v), at)
        break
      case 'UINT64':
        out.writeBigUInt64LE(BigInt(v as number | bigint), at)
        break
      case 'INT8':
        out.writeInt8(Number(v), at)
        break
      case 'INT16':
        out.writeInt16LE(Number(v), at)
        break
      case 'INT32':
        out.writeInt32LE(Number(v), at)
        break
      case 'INT64':
        out.writeBigInt64LE(BigInt(v as number | bigint), at)
        break
      case 'FP16':
        out.writeUInt16LE(float16Bits(Number(v)), at)
        break
      case 'FP32':
        out.writeFloatLE(Number(v), at)
        break
      case 'FP64':
        out.writeDoubleLE(Number(v), at)
        break
    }
  })
  return out
}

/** The elements a binary section holds (bigint for 64-bit ints, boolean for BOOL, string for BYTES). */
export function decodeBinary(datatype: V2Datatype, bytes: Buffer): Element[] {
  if (datatype === 'BYTES') {
    const out: string[] = []
    let pos = 0
    while (pos < bytes.length) {
      if (pos + 4 > bytes.length) throw new Error(`BYTES: a length cut short at ${pos}`)
      const n = bytes.readUInt32LE(pos)
      if (pos + 4 + n > bytes.length)
        throw new Error(`BYTES: element of ${n} bytes past the end at ${pos}`)
      out.push(bytes.toString('utf8', pos + 4, pos + 4 + n))
      pos += 4 + n
    }
    return out
  }
  const size = V2_SIZE[datatype]
  if (bytes.length % size !== 0)
    throw new Error(
      `${datatype}: ${bytes.length} bytes is not a whole number of ${size}-byte elements`,
    )
  const out: Element[] = []
  for (let at = 0; at < bytes.length; at += size) {
    switch (datatype) {
      case 'BOOL': {
        const b = bytes.readUInt8(at)
        if (b > 1) throw new Error(`BOOL byte ${b} is neither 0 nor 1`)
        out.push(b === 1)
        break
      }
      case 'UINT8':
        out.push(bytes.readUInt8(at))
        break
      case 'UINT16':
        out.push(bytes.readUInt16LE(at))
        break
      case 'UINT32':
        out.push(bytes.readUInt32LE(at))
        break
      case 'UINT64':
        out.push(bytes.readBigUInt64LE(at))
        break
      case 'INT8':
        out.push(bytes.readInt8(at))
        break
      case 'INT16':
        out.push(bytes.readInt16LE(at))
        break
      case 'INT32':
        out.push(bytes.readInt32LE(at))
        break
      case 'INT64':
        out.push(bytes.readBigInt64LE(at))
        break
      case 'FP16':
        out.push(float16Value(bytes.readUInt16LE(at)))
        break
      case 'FP32':
        out.push(bytes.readFloatLE(at))
        break
      case 'FP64':
        out.push(bytes.readDoubleLE(at))
        break
    }
  }
  return out
}

/** IEEE 754 binary16 bits of a number, rounded to nearest, ties to even. */
export function float16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0
  const a = Math.abs(value)
  if (a === Infinity) return sign | 0x7c00
  const roundEven = (x: number) => {
    const f = Math.floor(x)
    const d = x - f
    return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1
  }
  if (a < 2 ** -14) return sign | roundEven(a / 2 ** -24) // subnormal (1024 becomes the smallest normal)
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a) e--
  if (2 ** (e + 1) <= a) e++
  let m = roundEven((a / 2 ** e - 1) * 1024)
  if (m === 1024) {
    m = 0
    e++
  }
  if (e > 15) return sign | 0x7c00
  return sign | ((e + 15) << 10) | m
}

/** The number binary16 bits stand for. */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const e = (bits >> 10) & 0x1f
  const m = bits & 0x3ff
  if (e === 0) return sign * m * 2 ** -24
  if (e === 31) return m === 0 ? sign * Infinity : NaN
  return sign * (1 + m / 1024) * 2 ** (e - 15)
}

/** A test value as a JSON tensor element: non-finite floats as the strings modelgate takes. */
export function jsonElement(v: Element): Value {
  if (typeof v === 'number' && !Number.isFinite(v))
    return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'
  return v
}

/** Row-major flat data -> nested arrays of the given shape. */
export function nest<T>(data: readonly T[], shape: readonly number[]): unknown {
  if (shape.length === 0) return data[0]
  const [n, ...rest] = shape as [number, ...number[]]
  const stride = rest.reduce((a, b) => a * b, 1)
  return Array.from({ length: n }, (_, i) =>
    rest.length === 0 ? data[i] : nest(data.slice(i * stride, (i + 1) * stride), rest),
  )
}

// ---------------------------------------------------------------------------------------------
// Sample tensors: six elements per datatype (a [2, 3] tensor), edges of each type's range

export const SAMPLES: Readonly<Record<V2Datatype, readonly Element[]>> = {
  BOOL: [true, false, true, true, false, false],
  UINT8: [0, 1, 127, 128, 254, 255],
  UINT16: [0, 1, 255, 256, 65534, 65535],
  UINT32: [0, 1, 65535, 65536, 4294967294, 4294967295],
  UINT64: [0n, 1n, 255n, 4294967296n, 1099511627776n, 9007199254740991n],
  INT8: [-128, -1, 0, 1, 126, 127],
  INT16: [-32768, -1, 0, 1, 32766, 32767],
  INT32: [-2147483648, -1, 0, 1, 2147483646, 2147483647],
  INT64: [-9007199254740991n, -1n, 0n, 1n, 4294967296n, 9007199254740991n],
  // Exact half-precision values: no rounding question on the way in.
  FP16: [0, 1, -2, 0.5, 65504, 2 ** -24],
  // Exact float32 values, written as the shortest double that is that float.
  FP32: [0, 1.5, -2.25, 3.4028234663852886e38, 1.401298464324817e-45, 0.10000000149011612],
  FP64: [0, 0.1, -1e308, 5e-324, Math.PI, 1 / 3],
  BYTES: ['', 'a', 'héllo', '日本語', 'with "quotes" and \\ backslash', 'emoji 🎉'],
}

/** 64-bit values beyond 2^53 (binary tests; the JSON tests write these as raw literals). */
export const BIG_SAMPLES = {
  INT64: [
    9223372036854775807n,
    -9223372036854775808n,
    9007199254740993n,
    -9007199254740993n,
    9007199254740992n,
    0n,
  ],
  UINT64: [
    18446744073709551615n,
    9223372036854775808n,
    9007199254740993n,
    18446744073709551614n,
    0n,
    1n,
  ],
} as const

const FLOATS = new Set<string>(['FP16', 'FP32', 'FP64'])
const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity }

/** Whether a response element (JSON or decoded binary) is the expected one, exactly. */
function sameElement(datatype: string, got: unknown, exp: Element): boolean {
  if (datatype === 'INT64' || datatype === 'UINT64') {
    if (typeof got === 'bigint') return got === BigInt(exp as bigint)
    return (
      typeof got === 'number' && Number.isSafeInteger(got) && BigInt(got) === BigInt(exp as bigint)
    )
  }
  if (FLOATS.has(datatype)) {
    const g = typeof got === 'string' && got in NON_FINITE ? NON_FINITE[got]! : got
    if (typeof g !== 'number' || typeof exp !== 'number') return false
    return Number.isNaN(exp) ? Number.isNaN(g) : g === exp
  }
  return got === exp
}

/** Every element that differs, as readable lines (empty when all match). */
export function mismatches(
  datatype: string,
  got: readonly unknown[],
  exp: readonly Element[],
): string[] {
  const show = (v: unknown) => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v))
  if (got.length !== exp.length)
    return [`${got.length} elements, expected ${exp.length}: ${got.map(show).join(', ')}`]
  const out: string[] = []
  exp.forEach((e, i) => {
    if (!sameElement(datatype, got[i], e))
      out.push(`[${i}]: got ${show(got[i])}, expected ${show(e)}`)
  })
  return out
}
