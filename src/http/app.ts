import { Hono } from 'hono'
import type { DriftMonitor } from '../dataplane/drift/drift-monitor.js'
import type { Feedback } from '../dataplane/feedback.js'
import type { LiveFigures } from '../metrics/live-figures.js'
import type { Predictor } from '../dataplane/predictor.js'
import type { Lifecycle, Readiness } from '../lifecycle/lifecycle.js'
import type { ModelRegistry } from '../lifecycle/versions/model-registry.js'
import type { Logger } from '../log.js'
import type { RequestRates } from '../metrics/request-rates.js'
import type { MetricsExposition, ServerMetrics } from '../metrics/server-metrics.js'
import type { Liveness } from '../threadpool-probe.js'
import { createErrorHandler, createNotFound } from './error-handler.js'
import type { EventStreams } from './event-streams.js'
import { checkPathEncoding } from './path-encoding.js'
import { compressResponses } from './response-compression.js'
import { registerAdminRoutes } from './routes/admin-routes.js'
import { registerEventRoutes } from './routes/event-routes.js'
import { registerModelRoutes } from './routes/model-routes.js'
import { registerOpsRoutes } from './routes/ops-routes.js'
import { registerPredictRoutes } from './routes/predict-routes.js'
import { registerUiRoutes } from './routes/ui-routes.js'
import { registerV2Routes } from './routes/v2-routes.js'
import { VERSION } from '../version.js'

export interface HttpAppOptions {
  readonly predictor: Predictor
  readonly feedback: Feedback
  /** Every version's live figures, for GET /models/{name}. */
  readonly live: LiveFigures
  readonly registry: ModelRegistry
  readonly metrics: ServerMetrics
  /** What GET /metrics answers (every worker's metrics, in a worker of a cluster); default: `metrics`. */
  readonly exposition?: MetricsExposition | undefined
  readonly readiness: () => Readiness
  /** /healthz: the threadpool probe's verdict. */
  readonly liveness?: (() => Liveness) | undefined
  readonly maxBodyBytes: number
  readonly logger: Logger
  readonly lifecycle: Lifecycle
  readonly adminToken: string | undefined
  /** `GET /events` */
  readonly eventStreams: EventStreams
  /** Each model's drift, for GET /models/{name}. */
  readonly drift?: DriftMonitor | undefined
  /** Every version's requests per second, for GET /models/{name} and the dashboard. */
  readonly rates?: RequestRates | undefined
}

/** The HTTP surface: parses, calls the core, maps errors in one place. */
export function createHttpApp(options: HttpAppOptions): Hono {
  const app = new Hono()
  // Responses by Accept-Encoding, as the fast path does for predictions; V2 binary bodies too.
  // Only for clients that accept an encoding: the middleware reads the response's headers, which
  // makes @hono/node-server build a full Response, several times the cost of a small route.
  const compressing = compressResponses()
  app.use(function compressIfAccepted(c, next) {
    return c.req.header('accept-encoding') ? compressing(c, next) : next()
  })
  // Before any route (and admin auth) reads a path parameter: Hono would pass a malformed escape on as text.
  app.use(function rejectMalformedPath(c, next) {
    checkPathEncoding(c.req.url)
    return next()
  })
  registerPredictRoutes(app, options)
  registerV2Routes(app, { ...options, serverVersion: VERSION })
  registerAdminRoutes(app, options)
  registerEventRoutes(app, options)
  registerModelRoutes(app, options.registry, options.live, options.drift, options.rates)
  registerUiRoutes(app, options)
  registerOpsRoutes(app, { ...options, replicas: () => options.lifecycle.replicas() })
  app.notFound(createNotFound(options.logger))
  app.onError(createErrorHandler(options.logger))
  return app
}
