import type { HttpBindings } from '@hono/node-server'
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import type { Context } from 'hono'
import {
  InvalidEncodingError,
  OverloadedError,
  PayloadTooLargeError,
  RequestTimeoutError,
} from '../errors.js'
import { type BodyGuards, guardsOf } from './body-guards.js'
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
 *
 * On a modelgate server the body also holds a claim on the server's budget of buffered bytes (from
 * its Content-Length up front, then as decoded bytes arrive: OverloadedError when it cannot) and
 * is ended with RequestTimeoutError when no bytes come for the body timeout. The claim is released
 * however the body ends. A body refused part-way is not read further: its error answers with
 * `Connection: close` (errorPayload), so the rest is never read to be thrown away.
 */
export function readIncoming(incoming: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = incoming.headers['content-length']
  const declaredBytes = declared === undefined ? 0 : Number(declared)
  if (declaredBytes > limit) return Promise.reject(tooLarge(limit))
  const guards = guardsOf(incoming)
  const claim = guards?.budget.claim(declaredBytes)
  if (guards && !claim) return Promise.reject(overloaded(guards))
  let decoder: (Readable & NodeJS.WritableStream) | undefined
  try {
    decoder = requestDecoder(incoming.headers['content-encoding'])
  } catch (e) {
    claim?.release()
    incoming.resume()
    return Promise.reject(e)
  }
  const source: Readable = decoder ? incoming.pipe(decoder) : incoming
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const watch = guards?.stalls.watch(function onStall() {
      refuse(
        new RequestTimeoutError(
          `no bytes of the request body arrived for ${guards.stalls.timeoutMs / 1000} s`,
        ),
      )
    })
    const settle = () => {
      source.removeListener('data', onData)
      source.removeListener('end', onEnd)
      source.removeListener('error', onError)
      incoming.removeListener('aborted', onAborted)
      if (decoder) {
        incoming.removeListener('error', onError)
        incoming.removeListener('data', onProgress)
      }
      watch?.end()
      claim?.release()
    }
    /** Stops reading for good; the answer closes the connection. */
    const refuse = (e: Error) => {
      settle()
      if (decoder) {
        incoming.unpipe(decoder)
        decoder.destroy()
      }
      incoming.pause()
      reject(e)
    }
    const onProgress = () => watch?.progress()
    const onData = (chunk: Buffer) => {
      total += chunk.length
      if (total > limit) return refuse(tooLarge(limit))
      if (claim && !claim.cover(total)) return refuse(overloaded(guards!))
      if (!decoder) watch?.progress()
      chunks.push(chunk)
    }
    const onEnd = () => {
      settle()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total))
    }
    const onAborted = () =>
      onError(new ClientGoneError('the client closed the connection before sending its whole body'))
    const onError = (e: Error) => {
      settle()
      if (decoder) decoder.destroy()
      incoming.resume()
      // A body that does not decode is the client's fault, not ours.
      reject(
        decoder &&
          e !== undefined &&
          'code' in e &&
          String((e as NodeJS.ErrnoException).code).startsWith('Z_')
          ? new InvalidEncodingError(
              `the request body does not decode as ${incoming.headers['content-encoding']}: ${e.message}`,
            )
          : e,
      )
    }
    source.on('data', onData)
    source.on('end', onEnd)
    source.on('error', onError)
    incoming.on('aborted', onAborted)
    if (decoder) {
      incoming.on('error', onError)
      // Compressed bytes that have not decoded to anything yet are progress all the same.
      incoming.on('data', onProgress)
    }
  })
}

/** The client went away mid-request: nobody to answer, nothing to log as a server fault. */
export class ClientGoneError extends Error {}

function tooLarge(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`the request body is larger than ${limit} bytes`)
}

function overloaded(guards: BodyGuards): OverloadedError {
  return new OverloadedError(
    `the server holds as many request-body bytes as it may (${guards.budget.capacity}); retry after ${guards.retryAfterSeconds} s`,
    guards.retryAfterSeconds,
  )
}
