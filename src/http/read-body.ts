import type { HttpBindings } from '@hono/node-server'
import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'
import { InvalidEncodingError, PayloadTooLargeError } from '../errors.js'
import { requestDecoder } from './compression.js'

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

/**
 * The body of a Node request, at most `limit` bytes (else PayloadTooLargeError, early), decoded
 * when it is gzip or deflate. The limit holds for the decoded bytes too: a small compressed body
 * cannot expand into gigabytes.
 */
export function readIncoming(incoming: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = incoming.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit))
  let source: NodeJS.ReadableStream
  try {
    const decoder = requestDecoder(incoming.headers['content-encoding'])
    source = decoder ? incoming.pipe(decoder) : incoming
  } catch (e) {
    incoming.resume()
    return Promise.reject(e)
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const cleanup = () => {
      source.removeListener('data', onData)
      source.removeListener('end', onEnd)
      source.removeListener('error', onError)
      incoming.removeListener('aborted', onAborted)
      if (source !== incoming) incoming.removeListener('error', onError)
    }
    const onData = (chunk: Buffer) => {
      total += chunk.length
      if (total > limit) {
        cleanup()
        if (source !== incoming) incoming.unpipe()
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
    const onAborted = () => onError(new ClientGoneError('the client closed the connection before sending its whole body'))
    const onError = (e: Error) => {
      cleanup()
      incoming.resume()
      // A body that does not decode is the client's fault, not ours.
      reject(source !== incoming && e !== undefined && 'code' in e && String((e as NodeJS.ErrnoException).code).startsWith('Z_') ? new InvalidEncodingError(`the request body does not decode as ${incoming.headers['content-encoding']}: ${e.message}`) : e)
    }
    source.on('data', onData)
    source.on('end', onEnd)
    source.on('error', onError)
    incoming.on('aborted', onAborted)
    if (source !== incoming) incoming.on('error', onError)
  })
}

/** The client went away mid-request: nobody to answer, nothing to log as a server fault. */
export class ClientGoneError extends Error {}

function tooLarge(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`the request body is larger than ${limit} bytes`)
}
