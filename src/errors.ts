/**
 * Errors are API: every `code` is stable, documented in the README (a test checks), never renamed
 * or reused. `status` is what HTTP answers; the core throws these without knowing about HTTP.
 */
export type ErrorStatus =
  | 400
  | 401
  | 403
  | 404
  | 405
  | 408
  | 409
  | 413
  | 415
  | 422
  | 499
  | 500
  | 503
  | 504

export abstract class ServerError extends Error {
  abstract readonly code: string
  abstract readonly status: ErrorStatus
  readonly details: unknown

  constructor(message: string, options?: { details?: unknown; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.details = options?.details
  }

  toJSON(): { code: string; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details }
  }
}

// 400: the request is wrong; nothing was run.

export class InvalidJsonError extends ServerError {
  readonly code = 'invalid_json'
  readonly status = 400
}

export class InvalidRequestError extends ServerError {
  readonly code = 'invalid_request'
  readonly status = 400
}

export class MissingInputError extends ServerError {
  readonly code = 'missing_input'
  readonly status = 400
}

export class UnknownInputError extends ServerError {
  readonly code = 'unknown_input'
  readonly status = 400
}

export class UnknownOutputError extends ServerError {
  readonly code = 'unknown_output'
  readonly status = 400
}

/** The declared element type does not match the model's, or a value is not of that type. */
export class InvalidTypeError extends ServerError {
  readonly code = 'invalid_type'
  readonly status = 400
}

/** A value of the right kind but outside what the element type holds (300 for uint8, 1.5 for int32). */
export class InvalidValueError extends ServerError {
  readonly code = 'invalid_value'
  readonly status = 400
}

/** A gzip or deflate request body that does not decode. */
export class InvalidEncodingError extends ServerError {
  readonly code = 'invalid_encoding'
  readonly status = 400
}

/** Ragged arrays, a data length that does not fit the shape, or a shape the signature refuses. */
export class InvalidShapeError extends ServerError {
  readonly code = 'invalid_shape'
  readonly status = 400
}

// 401/403: admin routes.

export class UnauthorizedError extends ServerError {
  readonly code = 'unauthorized'
  readonly status = 401
}

export class ForbiddenError extends ServerError {
  readonly code = 'forbidden'
  readonly status = 403
}

// 404: the thing asked for is not there.

export class RouteNotFoundError extends ServerError {
  readonly code = 'route_not_found'
  readonly status = 404
}

export class ModelNotFoundError extends ServerError {
  readonly code = 'model_not_found'
  readonly status = 404
  constructor(readonly model: string) {
    super(`model '${model}' does not exist`)
  }
}

export class NoDefaultModelError extends ServerError {
  readonly code = 'no_default_model'
  readonly status = 404
}

export class VersionNotFoundError extends ServerError {
  readonly code = 'version_not_found'
  readonly status = 404
}

/** The version exists on disk but is not loaded (rejected, unloaded, or not yet gated). */
export class VersionNotLoadedError extends ServerError {
  readonly code = 'version_not_loaded'
  readonly status = 404
}

export class MethodNotAllowedError extends ServerError {
  readonly code = 'method_not_allowed'
  readonly status = 405
  constructor(readonly allow: readonly string[]) {
    super(`method not allowed; this route accepts ${allow.join(', ')}`)
  }
}

/** The operation does not fit the model's current state (roll back with nothing to go back to). */
export class ConflictError extends ServerError {
  readonly code = 'conflict'
  readonly status = 409
}

/**
 * An admin change a follower sent to the gatekeeper failed there: the gatekeeper's error, as it
 * answered it (same code, status and message).
 */
export class ForwardedError extends ServerError {
  readonly code: string
  readonly status: ErrorStatus
  constructor(error: { code: string; status: ErrorStatus; message: string; details?: unknown }) {
    super(error.message, { details: error.details })
    this.code = error.code
    this.status = error.status
  }
}

export class PayloadTooLargeError extends ServerError {
  readonly code = 'payload_too_large'
  readonly status = 413
}

export class UnsupportedMediaTypeError extends ServerError {
  readonly code = 'unsupported_media_type'
  readonly status = 415
}

/** An admin operation's version failed its gate; `details` holds every stage's result. */
export class GateFailedError extends ServerError {
  readonly code = 'gate_failed'
  readonly status = 422
}

/**
 * The answer would be larger than --max-output-size allows: refused from the outputs' dims, before
 * any encoding work. The request was run; asking for less (or more compactly) is the way out.
 */
export class OutputTooLargeError extends ServerError {
  readonly code = 'output_too_large'
  readonly status = 422
}

// 5xx: the server could not do it.

export class InferenceFailedError extends ServerError {
  readonly code = 'inference_failed'
  readonly status = 500
}

/**
 * The inference worker running the request died (a crash inside the runtime, or the thread ran out
 * of memory). The worker is replaced and the version keeps serving; retrying is safe.
 */
export class WorkerCrashedError extends ServerError {
  readonly code = 'worker_crashed'
  readonly status = 500
}

/** The run took longer than the model's `execution.timeoutSeconds`: its worker was replaced (it ends once its run returns). */
export class InferenceTimeoutError extends ServerError {
  readonly code = 'inference_timeout'
  readonly status = 504
}

/**
 * Every inference worker of the version is stuck in a run that outlived its timeout (onnxruntime
 * cannot stop a run once it started): nothing can run until one of them returns.
 */
export class WorkerUnavailableError extends ServerError {
  readonly code = 'worker_unavailable'
  readonly status = 503
}

/**
 * The client closed its connection before its request ran: the queued work was dropped. Nobody reads
 * this answer; it is what the access log records (499, as nginx does).
 */
export class RequestCancelledError extends ServerError {
  readonly code = 'request_cancelled'
  readonly status = 499
  constructor() {
    super('the client closed the connection before the request ran')
  }
}

/**
 * A version would not fit in the memory left (its model bytes times the number of sessions it
 * needs, plus what is loaded): it was not loaded, and the active version serves on.
 */
export class InsufficientMemoryError extends ServerError {
  readonly code = 'insufficient_memory'
  readonly status = 503
}

export class InternalError extends ServerError {
  readonly code = 'internal_error'
  readonly status = 500
}

/** An admin change sent to the gatekeeper got no answer in time: nothing holds the lease, or it is busy. */
export class NoGatekeeperError extends ServerError {
  readonly code = 'no_gatekeeper'
  readonly status = 503
}

export class ModelNotReadyError extends ServerError {
  readonly code = 'model_not_ready'
  readonly status = 503
  constructor(readonly model: string) {
    super(`model '${model}' has no active version yet`)
  }
}

export class ShuttingDownError extends ServerError {
  readonly code = 'shutting_down'
  readonly status = 503
}

/**
 * GET /metrics in a worker of `modelgate serve --workers N`: the primary process, which sums every
 * worker's metrics, did not give them in time (or one worker did not answer it).
 */
export class MetricsUnavailableError extends ServerError {
  readonly code = 'metrics_unavailable'
  readonly status = 503
}

/** A request body that stopped arriving: no bytes for the body timeout. */
export class RequestTimeoutError extends ServerError {
  readonly code = 'request_timeout'
  readonly status = 408
}

/**
 * The server is holding as many request-body bytes as it may (--max-inflight-body-size): try again
 * after `retryAfterSeconds` (sent as Retry-After).
 */
export class OverloadedError extends ServerError {
  readonly code = 'overloaded'
  readonly status = 503
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message)
  }
}

/** /healthz: the libuv threadpool (file system, gzip, crypto) has been stuck past --threadpool-stall-ms. */
export class ThreadpoolStalledError extends ServerError {
  readonly code = 'threadpool_stalled'
  readonly status = 503
}

/**
 * An admin change (rollback, promote) that state.json could not record (a full or read-only disk):
 * it was undone, and the version that served before serves on. Nothing changed; retry once the
 * state directory can be written.
 */
export class StateWriteFailedError extends ServerError {
  readonly code = 'state_write_failed'
  readonly status = 503
}
