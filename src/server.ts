import { getRequestListener } from '@hono/node-server'
import { stat } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ServeConfig } from './config.js'
import { Predictor } from './dataplane/predictor.js'
import { createHttpApp } from './http/app.js'
import { createFastPredict } from './http/fast-predict.js'
import { Lifecycle } from './lifecycle/lifecycle.js'
import { ModelRegistry } from './lifecycle/model-registry.js'
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
  const app = createHttpApp({
    predictor,
    registry,
    metrics,
    readiness: () => lifecycle.readiness(),
    maxBodyBytes: config.maxBodyBytes,
    logger,
    lifecycle,
    adminToken: config.adminToken,
  })

  // Predictions take the fast path; every other request goes to the Hono app.
  const fastPredict = createFastPredict({ predictor, maxBodyBytes: config.maxBodyBytes, logger })
  const hono = getRequestListener(app.fetch)
  const server = createHttpServer((req, res) => {
    if (!fastPredict(req, res)) void hono(req, res)
  })
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(new StartupError(`cannot listen on ${config.host}:${config.port}: ${e.message}`))
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
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      await lifecycle.close()
    },
  }
}
