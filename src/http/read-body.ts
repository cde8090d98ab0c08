import type { HttpBindings } from '@hono/node-server'
import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'
import { PayloadTooLargeError } from '../errors.js'

/**
 * The request body as bytes, read straight from Node's IncomingMessage. Hono's own body access
 * builds a WHATWG Request (and an AbortSignal) per request, a large share of the time a small
 * prediction takes. Over `limit` bytes: 413 at once, from Content-Length when there is one, else
 * as soon as the running total passes it, before the rest is buffered.
 */
export function readBody(c: Context, limit: number): Promise<Buffer> {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming
  if (!incoming) {
    // Not running on @hono/node-server (app.fetch in a test): the slower, portable way.
    return c.req.arrayBuffer().then((b) => {
      if (b.byteLength > limit) throw tooLarge(limit)
      return Buffer.from(b)
    })
  }
  return readIncoming(incoming, limit)
}

/** The body of a Node request, at most `limit` bytes (else PayloadTooLargeError, early). */
export function readIncoming(incoming: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = incoming.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const cleanup = () => {
      incoming.off('data', onData)
      incoming.off('end', onEnd)
      incoming.off('error', onError)
    }
    const onData = (chunk: Buffer) => {
      total += chunk.length
      if (total > limit) {
        cleanup()
        incoming.resume() // drain the rest without keeping it
        reject(tooLarge(limit))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total))
    }
    const onError = (e: Error) => {
      cleanup()
      reject(e)
    }
    incoming.on('data', onData)
    incoming.on('end', onEnd)
    incoming.on('error', onError)
  })
}

function tooLarge(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`the request body is larger than ${limit} bytes`)
}
