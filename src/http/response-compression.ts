import type { MiddlewareHandler } from 'hono'
import { chooseEncoding, COMPRESS_THRESHOLD, compress } from './compression.js'

const COMPRESSIBLE = /^application\/(json|octet-stream)|^text\//i
const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i

/**
 * Compresses the Hono routes' answers by the same rule as the predict fast path: by Accept-Encoding,
 * only at COMPRESS_THRESHOLD bytes or more. Hono's own middleware compresses every answer that has
 * no Content-Length, which is every `c.json()`, so a 100-byte answer went out gzipped.
 * Answers here are already whole in memory (JSON, metrics text, V2 tensors), so reading the body to
 * measure it costs no more than sending it.
 */
export function compressResponses(): MiddlewareHandler {
  return async function compressLargeAnswers(c, next) {
    await next()
    const encoding = chooseEncoding(c.req.header('accept-encoding'))
    const res = c.res
    if (
      !encoding ||
      !res.body ||
      c.req.method === 'HEAD' ||
      res.status === 206 ||
      res.headers.has('content-encoding')
    )
      return
    if (
      !COMPRESSIBLE.test(res.headers.get('content-type') ?? '') ||
      NO_TRANSFORM.test(res.headers.get('cache-control') ?? '')
    )
      return
    const body = Buffer.from(await res.arrayBuffer())
    if (body.length < COMPRESS_THRESHOLD) {
      c.res = new Response(body, res)
      c.res.headers.set('content-length', String(body.length))
      return
    }
    const encoded = await compress(body, encoding) // zlib on the threadpool, as for predictions
    // Headers set after the assignment: Hono copies the old answer's headers over the new one's.
    c.res = new Response(encoded, res)
    c.res.headers.set('content-encoding', encoding)
    c.res.headers.set('content-length', String(encoded.length))
    c.res.headers.append('vary', 'Accept-Encoding')
  }
}
