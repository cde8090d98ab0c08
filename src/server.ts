import { getRequestListener } from '@hono/node-server'
import { stat } from 'node:fs/promises'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerOptions,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Hono } from 'hono'
import type { ServeConfig } from './config.js'
import { DriftMonitor } from './dataplane/drift/drift-monitor.js'
import { Feedback } from './dataplane/feedback.js'
import { FeedbackRelay } from './dataplane/feedback-relay.js'
import { PredictionLogs } from './dataplane/prediction-logs.js'
import { PayloadLogs } from './dataplane/payloads/payload-logs.js'
import { Predictor } from './dataplane/predictor.js'
import { ShadowMirror } from './dataplane/shadow-mirror.js'
import { isLoopbackHost } from './admin-token.js'
import { createHttpApp } from './http/app.js'
import { BodyBudget } from './http/body-budget.js'
import { guardedRequestClass } from './http/body-guards.js'
import { createFastPredict } from './http/fast-predict.js'
import { errorPayload, writeErrorPayload } from './http/error-payload.js'
import { StallWatch } from './http/stall-watch.js'
import { ShuttingDownError } from './errors.js'
import { type GrpcListener, startGrpcServer } from './grpc/grpc-server.js'
import { EventBus } from './events/event-bus.js'
import { Webhooks, webhookName } from './events/webhooks.js'
import { EventStreams } from './http/event-streams.js'
import { Lifecycle } from './lifecycle/lifecycle.js'
import { ModelRegistry } from './lifecycle/versions/model-registry.js'
import type { Logger } from './log.js'
import { LiveFigures } from './metrics/live-figures.js'
import { RequestRates } from './metrics/request-rates.js'
import { type MetricsExposition, ServerMetrics } from './metrics/server-metrics.js'
import { ThreadpoolProbe } from './threadpool-probe.js'
import { VERSION } from './version.js'

export interface ModelgateServer {
  readonly url: string
  readonly port: number
  /** The gRPC listener's port; undefined without --grpc-port. */
  readonly grpcPort: number | undefined
  readonly registry: ModelRegistry
  readonly lifecycle: Lifecycle
  readonly metrics: ServerMetrics
  /** Lifecycle events, as webhooks and `GET /events` receive them. */
  readonly events: EventBus
  /**
   * The Hono app behind the listener, for requests without a socket (`app.request()` in tests).
   * Predictions there take its routes, not the fast path; draining and body guards are the listener's.
   */
  readonly app: Hono
  /** Settles when the initial load of the models directory has finished. */
  readonly loaded: Promise<void>
  close(): Promise<void>
}

export class StartupError extends Error {}

export interface StartOptions {
  /**
   * What GET /metrics answers, given this server's own metrics (a worker of `--workers N` answers
   * every worker's, summed by the primary); default: its own.
   */
  readonly exposition?: ((own: ServerMetrics) => MetricsExposition) | undefined
  /**
   * Listen only once the initial load has finished: a worker that replaces one of a cluster's
   * (the others answer meanwhile; a connection handed to it before would get model_not_ready).
   */
  readonly listenOnceLoaded?: boolean | undefined
}

/** Where a request went, as an error's log line names it. */
function where(req: IncomingMessage): { method: string; path: string } {
  return { method: req.method ?? '', path: req.url ?? '' }
}

/** At shutdown, queued webhook deliveries get this long (at most the shutdown timeout). */
const WEBHOOK_GRACE_MS = 5000
/** At shutdown, queued payload log lines get this long to reach the disk (at most the shutdown timeout). */
const PAYLOAD_LOG_GRACE_MS = 5000

/** A client refused for want of body budget is told to come back this much later (Retry-After). */
const OVERLOADED_RETRY_AFTER_SECONDS = 1

/**
 * The composition root: the only place the pieces are wired together. Listens first (unless
 * `listenOnceLoaded`), so liveness answers at once and readiness turns true when the models are loaded.
 */
export async function startServer(
  config: ServeConfig,
  logger: Logger,
  options: StartOptions = {},
): Promise<ModelgateServer> {
  const dir = await stat(config.modelsDir).catch(() => undefined)
  if (!dir?.isDirectory())
    throw new StartupError(
      `models directory ${config.modelsDir} does not exist or is not a directory`,
    )

  // Request bodies: bounded together (bytes buffered across requests) and in time (stalls).
  const bodyBudget = new BodyBudget(config.maxInflightBodyBytes)
  const bodyGuards = {
    budget: bodyBudget,
    stalls: new StallWatch(config.bodyTimeoutMs),
    retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS,
  }
  const live = new LiveFigures()
  const rates = new RequestRates(live)
  const metrics = new ServerMetrics({ inflightBodyBytes: () => bodyBudget.used, live })
  const registry = new ModelRegistry(config.defaultModel)
  const events = new EventBus(logger)
  const webhooks = new Webhooks(events, {
    urls: config.webhooks,
    secret: config.webhookSecret,
    logger,
    metrics,
    // Replicas share one history: its events are sent once, by the gatekeeper that wrote them.
    sends: () => lifecycle.gatekeeper,
  })
  const eventStreams = new EventStreams({ bus: events, metrics })
  const lifecycle = new Lifecycle({
    modelsDir: config.modelsDir,
    stateDir: config.stateDir,
    registry,
    metrics,
    live,
    logger,
    options: {
      stabilityMs: config.stabilityMs,
      requireSmoke: config.requireSmoke,
      rescanIntervalMs: config.rescanMs,
      poll: config.poll,
      maxModelBytes: config.maxModelBytes,
      execution: config.execution,
      maxMemoryBytes: config.maxMemoryBytes,
    },
    events,
  })
  const threadpool = new ThreadpoolProbe({ stallMs: config.threadpoolStallMs, logger })
  const predictionLogs = new PredictionLogs()
  const payloadLogs = new PayloadLogs({ stateDir: config.stateDir, metrics, logger })
  const drift = new DriftMonitor({
    registry,
    metrics,
    logger,
    record: (entry) => void lifecycle.record(entry),
  })
  const predictor = new Predictor(registry, metrics, logger, {
    maxOutputBytes: config.maxOutputBytes,
    live,
    logs: predictionLogs,
    taps: [drift, payloadLogs, new ShadowMirror(logger, metrics)],
  })
  // Feedback goes into the payload log beside the predictions it is about, joined by id.
  const feedback = new Feedback(registry, predictionLogs, live, metrics, (model, item) =>
    payloadLogs.feedback(model, item),
  )
  // Replicas behind one balancer: feedback for a prediction another one answered reaches it.
  const feedbackRelay = new FeedbackRelay({
    stateDir: config.stateDir,
    logger,
    self: () => lifecycle.replicaId,
    rotates: () => lifecycle.gatekeeper,
    deliver: (model, items) => feedback.relayed(model, items),
  })
  feedback.forwarding = {
    active: () => lifecycle.hasPeers,
    relay: (model, items) => feedbackRelay.relay(model, items),
  }
  let draining = false
  // Draining: not ready, so load balancers stop sending before the listeners close.
  const readiness = () =>
    draining ? { ...lifecycle.readiness(), ready: false } : lifecycle.readiness()
  let open = 0 // requests received and not yet answered
  let onDrained: (() => void) | undefined // set while a shutdown waits for `open` to reach 0
  const app = createHttpApp({
    predictor,
    feedback,
    live,
    registry,
    metrics,
    exposition: options.exposition?.(metrics),
    readiness,
    liveness: () => threadpool.check(),
    maxBodyBytes: config.maxBodyBytes,
    logger,
    lifecycle,
    adminToken: config.adminToken,
    eventStreams,
    drift,
    rates,
  })

  // Predictions take the fast path; every other request goes to the Hono app.
  const fastPredict = createFastPredict({ predictor, maxBodyBytes: config.maxBodyBytes, logger })
  const hono = getRequestListener(app.fetch, {
    // HTTP/1.0 has no Host header (Node requires one of HTTP/1.1 requests): a probe that sends
    // none is answered like any other request, not refused with an empty 400.
    hostname: 'localhost',
    // A request whose URL cannot be built (a Host header that is not a host name, a backslash in
    // the path) fails the listener's promise, and errorPayload answers it below, in the documented
    // form, rather than @hono/node-server with an empty 400.
    errorHandler: (e) => {
      throw e
    },
  })
  const serverOptions: ServerOptions = {
    IncomingMessage: guardedRequestClass(bodyGuards),
    // Our own bounds rather than Node's defaults (60 s for headers, 300 s for a request), checked
    // often enough to be honoured within a fraction of the shortest (Node checks every 30 s).
    headersTimeout: config.headerTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(
      50,
      Math.min(1000, Math.floor(config.headerTimeoutMs / 4)),
    ),
  }
  const server = createHttpServer(serverOptions, (req, res) => {
    if (draining) {
      // A request on a kept-alive connection after shutdown began: refuse it, close the connection.
      writeErrorPayload(
        res,
        errorPayload(new ShuttingDownError('the server is shutting down'), logger, where(req)),
        { connection: 'close' },
      )
      return
    }
    open++
    res.once('close', () => {
      open--
      if (open === 0) onDrained?.()
    })
    // modelgate never switches protocols, and answers a request that asks to like any other. But
    // Node 20 can leave a connection that carried one with a body unable to read the next request
    // (nodejs/node#60016: it hung until the keep-alive timeout, then reset): close it after the answer.
    if (req.headers.upgrade !== undefined) res.setHeader('connection', 'close')
    if (!fastPredict(req, res))
      hono(req, res).catch((e: unknown) =>
        writeErrorPayload(res, errorPayload(e, logger, where(req))),
      )
  })
  const load = () =>
    lifecycle.start().catch((e: unknown) => {
      logger.error('initial_load_failed', { error: e, stack: (e as Error).stack })
    })
  let loaded: Promise<void> | undefined
  if (options.listenOnceLoaded) {
    loaded = load()
    await loaded
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      threadpool.close()
      metrics.close()
      if (loaded) void lifecycle.close()
      reject(new StartupError(`cannot listen on ${config.host}:${config.port}: ${e.message}`))
    }
    server.once('error', onError)
    server.listen(config.port, config.host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  const url = `http://${host}:${port}`
  logger.info('listening', { url, models: config.modelsDir })
  let grpc: GrpcListener | undefined
  if (config.grpcPort !== undefined) {
    grpc = await startGrpcServer({
      host: config.host,
      port: config.grpcPort,
      maxMessageBytes: config.grpcMaxMessageBytes,
      predictor,
      registry,
      lifecycle,
      readiness,
      adminToken: config.adminToken,
      serverVersion: VERSION,
      logger,
    }).catch((e: unknown) => {
      server.close()
      threadpool.close()
      metrics.close()
      if (loaded) void lifecycle.close()
      throw new StartupError(
        `cannot listen for gRPC on ${config.host}:${config.grpcPort}: ${(e as Error).message}`,
      )
    })
    logger.info('grpc_listening', {
      address: `${host}:${grpc.port}`,
      maxMessageBytes: config.grpcMaxMessageBytes,
    })
  }
  rates.start()
  feedbackRelay.start()
  if (config.webhooks.length > 0)
    logger.info('webhooks', {
      webhooks: config.webhooks.map(webhookName),
      signed: config.webhookSecret !== undefined,
    })
  if (config.adminToken === undefined && !isLoopbackHost(config.host)) {
    // Reachable from the network, administrable from nowhere but this machine: say so once.
    logger.warn('admin_loopback_only', {
      host: config.host,
      message:
        'no admin token is set: admin routes (rollback, promote, history) answer loopback clients only; set MODELGATE_ADMIN_TOKEN or --admin-token-file to use them from elsewhere',
    })
  }

  let closing: Promise<void> = Promise.resolve()
  loaded ??= load()

  return {
    url,
    port,
    grpcPort: grpc?.port,
    registry,
    lifecycle,
    metrics,
    events,
    app,
    loaded,
    /**
     * Graceful shutdown: readiness turns false, the listener closes (new connections are refused),
     * in-flight requests finish, bounded by the shutdown timeout, then state is flushed.
     */
    async close() {
      if (draining) return closing
      draining = true
      closing = (async () => {
        const started = Date.now()
        logger.info('draining', { inFlight: open, timeoutMs: config.shutdownTimeoutMs })
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        // gRPC drains beside HTTP, within the same timeout.
        const grpcClosed = grpc?.close(config.shutdownTimeoutMs)
        server.closeIdleConnections()
        // Event streams never end by themselves: end them, or the drain would wait them out.
        eventStreams.close()
        if (open > 0) {
          let timer: NodeJS.Timeout | undefined
          await Promise.race([
            new Promise<void>((resolve) => (onDrained = resolve)),
            new Promise<void>((resolve) => (timer = setTimeout(resolve, config.shutdownTimeoutMs))),
          ])
          clearTimeout(timer)
        }
        if (open > 0)
          logger.warn('shutdown_timeout', { unanswered: open, timeoutMs: config.shutdownTimeoutMs })
        server.closeAllConnections()
        await closed
        await grpcClosed
        // The requests have been answered: their payload lines are all queued.
        await payloadLogs.close(Math.min(PAYLOAD_LOG_GRACE_MS, config.shutdownTimeoutMs))
        drift.close() // no judgement runs once the history is flushed
        feedbackRelay.close()
        await lifecycle.close()
        // After the lifecycle: its last events are queued too.
        await webhooks.close(Math.min(WEBHOOK_GRACE_MS, config.shutdownTimeoutMs))
        threadpool.close()
        metrics.close()
        rates.close()
        logger.info('stopped', { ms: Date.now() - started })
      })()
      return closing
    },
  }
}
