import type { Context } from 'hono'
import { RouteNotFoundError } from '../errors.js'
import type { Logger } from '../log.js'
import { errorPayload } from './error-payload.js'

/** The one place errors become HTTP for the Hono routes: `{"error": {"code", "message"}}`. */
function errorResponse(c: Context, err: unknown, logger: Logger): Response {
  const { status, headers, body } = errorPayload(err, logger, {
    method: c.req.method,
    path: c.req.path,
  })
  return c.body(body, status as 400, headers)
}

export function createErrorHandler(logger: Logger) {
  return function handleError(err: Error, c: Context): Response {
    return errorResponse(c, err, logger)
  }
}

export function createNotFound(logger: Logger) {
  return function notFound(c: Context): Response {
    return errorResponse(
      c,
      new RouteNotFoundError(`no route for ${c.req.method} ${c.req.path}`),
      logger,
    )
  }
}
