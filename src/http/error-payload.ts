import { RequestError } from '@hono/node-server'
import type { ServerResponse } from 'node:http'
import { HTTPException } from 'hono/http-exception'
import {
  InternalError,
  InvalidRequestError,
  MethodNotAllowedError,
  OverloadedError,
  PayloadTooLargeError,
  RequestTimeoutError,
  ServerError,
} from '../errors.js'
import { ClientGoneError } from './read-body.js'
import type { Logger } from '../log.js'

export interface ErrorPayload {
  readonly status: number
  readonly headers: Record<string, string>
  /** `{"error": {"code", "message"}}` */
  readonly body: string
}

/**
 * Any error -> what HTTP answers: the one mapping both the Hono routes and the predict fast path
 * use. Unknown errors are logged and answered as a 500 without their details.
 */
export function errorPayload(
  err: unknown,
  logger: Logger,
  where: { method: string; path: string },
): ErrorPayload {
  let error: ServerError
  if (err instanceof ServerError) {
    error = err
  } else if (err instanceof HTTPException && err.status === 413) {
    error = new PayloadTooLargeError('the request body is too large')
  } else if (err instanceof RequestError) {
    // @hono/node-server could not build the request's URL: a Host header that is not a host name,
    // a backslash in the path, a request target that is not a path.
    error = new InvalidRequestError(
      `the request target or its Host header is not valid: ${err.message}`,
    )
  } else if (err instanceof ClientGoneError) {
    logger.debug('client_gone', { ...where })
    error = new InvalidRequestError(err.message)
  } else if (err instanceof HTTPException) {
    logger.warn('http_exception', { ...where, status: err.status, error: err })
    error = new InternalError(`unexpected HTTP error ${err.status}: ${err.message}`)
  } else {
    logger.error('unhandled_error', {
      ...where,
      error: err,
      stack: (err as Error | undefined)?.stack,
    })
    error = new InternalError('internal server error')
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (error instanceof MethodNotAllowedError) headers.allow = error.allow.join(', ')
  if (error instanceof OverloadedError) headers['retry-after'] = String(error.retryAfterSeconds)
  // A body refused before it was read in full: close rather than read the rest only to throw it
  // away (RFC 9110 allows it for 413 and asks it for 408).
  if (
    error instanceof PayloadTooLargeError ||
    error instanceof RequestTimeoutError ||
    error instanceof OverloadedError
  )
    headers.connection = 'close'
  // The V2 protocol's error body is a string; modelgate's own API gives a code too.
  const body = isV2Path(where.path) ? { error: error.message } : { error: error.toJSON() }
  return { status: error.status, headers, body: JSON.stringify(body) }
}

/** `path` may be a whole request target (Node's req.url): its query or fragment does not count. */
function isV2Path(path: string): boolean {
  const end = path.search(/[?#]/)
  const p = end < 0 ? path : path.slice(0, end)
  return p === '/v2' || p.startsWith('/v2/')
}

/** Answers with `payload` on Node's response; a response already under way can only be cut short. */
export function writeErrorPayload(
  res: ServerResponse,
  payload: ErrorPayload,
  extraHeaders: Record<string, string> = {},
): void {
  if (res.headersSent) return void res.destroy()
  res.writeHead(payload.status, {
    ...payload.headers,
    ...extraHeaders,
    'content-length': Buffer.byteLength(payload.body),
  })
  res.end(payload.body)
}
