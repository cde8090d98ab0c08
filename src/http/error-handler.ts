import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import {
  InternalError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  RouteNotFoundError,
  ServerError,
} from '../errors.js'
import type { Logger } from '../log.js'

/** The one place errors become HTTP: `{"error": {"code", "message"}}` with the error's status. */
export function errorResponse(c: Context, error: ServerError): Response {
  if (error instanceof MethodNotAllowedError) c.header('Allow', error.allow.join(', '))
  return c.json({ error: error.toJSON() }, error.status)
}

export function createErrorHandler(logger: Logger) {
  return function handleError(err: Error, c: Context): Response {
    if (err instanceof ServerError) return errorResponse(c, err)
    if (err instanceof HTTPException) {
      if (err.status === 413) return errorResponse(c, new PayloadTooLargeError('the request body is too large'))
      logger.warn('http_exception', { status: err.status, error: err })
      return errorResponse(c, new InternalError(`unexpected HTTP error ${err.status}: ${err.message}`))
    }
    logger.error('unhandled_error', { method: c.req.method, path: c.req.path, error: err, stack: err.stack })
    return errorResponse(c, new InternalError('internal server error'))
  }
}

export function notFound(c: Context): Response {
  return errorResponse(c, new RouteNotFoundError(`no route for ${c.req.method} ${c.req.path}`))
}
