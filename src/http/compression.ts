import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { createGunzip, createInflate, deflate, gzip } from 'node:zlib'
import { UnsupportedMediaTypeError } from '../errors.js'

/**
 * gzip and deflate both ways, as Triton accepts them: request bodies by Content-Encoding, responses
 * by Accept-Encoding (above a size where it pays).
 */

export type Encoding = 'gzip' | 'deflate'

/** Responses smaller than this go out as they are: compressing them costs more than it saves. */
export const COMPRESS_THRESHOLD = 1024

/** The stream that decodes a request body, or undefined for an identity body. */
export function requestDecoder(
  contentEncoding: string | undefined,
): (Readable & NodeJS.WritableStream) | undefined {
  const encoding = contentEncoding?.trim().toLowerCase()
  if (encoding === undefined || encoding === '' || encoding === 'identity') return undefined
  if (encoding === 'gzip' || encoding === 'x-gzip') return createGunzip()
  if (encoding === 'deflate') return createInflate()
  throw new UnsupportedMediaTypeError(
    `Content-Encoding '${contentEncoding}' is not supported; use gzip or deflate`,
  )
}

/** The client's preferred encoding we support (q-values honoured; gzip first on a tie), if any. */
export function chooseEncoding(acceptEncoding: string | undefined): Encoding | undefined {
  if (!acceptEncoding) return undefined
  let best: { encoding: Encoding; q: number } | undefined
  let wildcard = 0
  const q = new Map<string, number>()
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    const value = qParam ? Number(qParam.slice(2)) : 1
    if (!name || Number.isNaN(value)) continue
    if (name === '*') wildcard = value
    else q.set(name, value)
  }
  for (const encoding of ['gzip', 'deflate'] as const) {
    const value =
      q.get(encoding) ?? (encoding === 'gzip' ? (q.get('x-gzip') ?? wildcard) : wildcard)
    if (value > 0 && (!best || value > best.q)) best = { encoding, q: value }
  }
  return best?.encoding
}

const gzipAsync = promisify(gzip)
const deflateAsync = promisify(deflate)

/** Compressed on libuv's thread pool: a large response does not stall the event loop. */
export function compress(body: Buffer, encoding: Encoding): Promise<Buffer> {
  return encoding === 'gzip' ? gzipAsync(body) : deflateAsync(body)
}
