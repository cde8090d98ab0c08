import { getRequestListener } from '@hono/node-server'
import { stat } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ServeConfig } from './config.js'
import { Predictor } from './dataplane/predictor.js'
import { createHttpApp } from './http/app.js'
import { createFastPredict } from './http/fast-predict.js'
import { errorPayload } from './http/error-payload.js'
import { ShuttingDownError } from './errors.js'
import { Lifecycle } from './lifecycle/lifecycle.js'
import { ModelRegistry } from './lifecycle/model-registry.js'
import { StateLock, StateLockedError } from './lifecycle/state-lock.js'
import type { Logger } from './log.js'
import { ServerMetrics } from './metrics/server-metrics.js'

export interface ModelgateServer {
  readonly url: string
  readonly port: number
  readonly registry: ModelRegistry
  readonly lifecycle: Lifecycle
  readonly metrics: ServerMetrics
  /** Settles when the initial load of the models directory has finished. */
  readonly loaded: Promise<void>
  close(): Promise<void>
}

export class StartupError extends Error {}

/**
 * The composition root: the only place the pieces are wired together. Listens first, so liveness
 * answers at once and readiness turns true when the models are loaded.
 */
export async function startServer(config: ServeConfig, logger: Logger): Promise<ModelgateServer> {
  const dir = await stat(config.modelsDir).catch(() => undefined)
  if (!dir?.isDirectory()) throw new StartupError(`models directory ${config.modelsDir} does not exist or is not a directory`)
  // Before listening: a second server on this state directory is refused before it serves anything.
  const stateLock = await StateLock.acquire(config.stateDir, logger).catch((e: unknown) => {
    throw e instanceof StateLockedError ? new StartupError(e.message) : e
  })

  const metrics = new ServerMetrics()
  const registry = new ModelRegistry(config.defaultModel)
  const lifecycle = new Lifecycle({
    modelsDir: config.modelsDir,
    stateDir: config.stateDir,
    registry,
    metrics,
    logger,
    options: { stabilityMs: config.stabilityMs, requireSmoke: config.requireSmoke, rescanIntervalMs: config.rescanMs, poll: config.poll },
  })
  const predictor = new Predictor(registry, metrics, logger)
  let draining = false
  let open = 0 // requests received and not yet answered
  const app = createHttpApp({
    predictor,
    registry,
    metrics,
    // Draining: not ready, so load balancers stop sending before the listener closes.
    readiness: () => (draining ? { ...lifecycle.readiness(), ready: false } : lifecycle.readiness()),
    maxBodyBytes: config.maxBodyBytes,
    logger,
    lifecycle,
    adminToken: config.adminToken,
  })

  // Predictions take the fast path; every other request goes to the Hono app.
  const fastPredict = createFastPredict({ predictor, maxBodyBytes: config.maxBodyBytes, logger })
  const hono = getRequestListener(app.fetch)
  const server = createHttpServer((req, res) => {
    if (draining) {
      // A request on a kept-alive connection after shutdown began: refuse it, close the connection.
      const { status, headers, body } = errorPayload(new ShuttingDownError('the server is shutting down'), logger, { method: req.method ?? '', path: req.url ?? '' })
      res.writeHead(status, { ...headers, connection: 'close' })
      res.end(body)
      return
    }
    open++
    res.once('close', () => open--)
    if (!fastPredict(req, res)) void hono(req, res)
  })
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      void stateLock.release()
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

  let closing: Promise<void> = Promise.resolve()
  const loaded = lifecycle.start().catch((e: unknown) => {
    logger.error('initial_load_failed', { error: e, stack: (e as Error).stack })
  })

  return {
    url,
    port,
    registry,
    lifecycle,
    metrics,
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
        server.closeIdleConnections()
        const deadline = started + config.shutdownTimeoutMs
        while (open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
        if (open > 0) logger.warn('shutdown_timeout', { unanswered: open, timeoutMs: config.shutdownTimeoutMs })
        server.closeAllConnections()
        await closed
        await lifecycle.close()
        await stateLock.release()
        logger.info('stopped', { ms: Date.now() - started })
      })()
      return closing
    },
  }
}
