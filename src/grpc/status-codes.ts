import { Metadata, status, type StatusObject } from '@grpc/grpc-js'
import { type ErrorStatus, ServerError } from '../errors.js'
import type { Logger } from '../log.js'

/** The gRPC code for each HTTP status a ServerError carries (README "gRPC" lists them). */
const CODE_OF_STATUS: Readonly<Record<ErrorStatus, status>> = {
  400: status.INVALID_ARGUMENT,
  401: status.UNAUTHENTICATED,
  403: status.PERMISSION_DENIED,
  404: status.NOT_FOUND,
  405: status.UNIMPLEMENTED,
  408: status.DEADLINE_EXCEEDED,
  409: status.FAILED_PRECONDITION,
  413: status.RESOURCE_EXHAUSTED,
  415: status.INVALID_ARGUMENT,
  422: status.FAILED_PRECONDITION,
  499: status.CANCELLED,
  500: status.INTERNAL,
  503: status.UNAVAILABLE,
  504: status.DEADLINE_EXCEEDED,
}

/** Codes whose HTTP status is shared with a different meaning: a 422 answer too large is a size limit. */
const CODE_OF_ERROR: Readonly<Record<string, status>> = {
  output_too_large: status.RESOURCE_EXHAUSTED,
}

/**
 * The status a failed call ends with: the error's message as details, its stable code in the
 * `modelgate-error-code` trailer (the data plane logs its own failures). An error that is not a
 * ServerError is a bug: INTERNAL, logged.
 */
export function grpcStatusOf(e: unknown, logger: Logger, method: string): Partial<StatusObject> {
  const metadata = new Metadata()
  if (e instanceof ServerError) {
    metadata.set('modelgate-error-code', e.code)
    return {
      code: CODE_OF_ERROR[e.code] ?? CODE_OF_STATUS[e.status],
      details: e.message,
      metadata,
    }
  }
  logger.error('grpc_call_failed', { method, error: e, stack: (e as Error)?.stack })
  metadata.set('modelgate-error-code', 'internal_error')
  return { code: status.INTERNAL, details: 'internal error', metadata }
}
