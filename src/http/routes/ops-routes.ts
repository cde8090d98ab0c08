import type { Hono } from 'hono'
import { ThreadpoolStalledError } from '../../errors.js'
import type { Readiness, ReplicasView } from '../../lifecycle/lifecycle.js'
import type { MetricsExposition, ServerMetrics } from '../../metrics/server-metrics.js'
import type { Liveness } from '../../threadpool-probe.js'
import { route } from '../method-routes.js'
import { docsPage, openApiDocument } from '../openapi.js'
import { VERSION } from '../../version.js'

export interface OpsRoutesOptions {
  readonly readiness: () => Readiness
  /** Whether the process can still do its work; it answers at once, whatever is stuck. */
  readonly liveness?: (() => Liveness) | undefined
  readonly metrics: ServerMetrics
  /** Who is who among the replicas sharing the state directory. */
  readonly replicas: () => Promise<ReplicasView>
  /** What GET /metrics answers; default: this server's own metrics. */
  readonly exposition?: MetricsExposition | undefined
}

/** Probe answers are never cached, nor transformed: `no-transform` keeps the compression middleware off them. */
const PROBE_CACHE_CONTROL = 'no-store, no-transform'

/** Kubernetes probes and Prometheus. */
export function registerOpsRoutes(
  app: Hono,
  { readiness, liveness, metrics, replicas, exposition = metrics }: OpsRoutesOptions,
): void {
  route(app, '/healthz', {
    GET: (c) => {
      // Never compressed: gzip runs on the threadpool this answer must not wait for.
      c.header('Cache-Control', PROBE_CACHE_CONTROL)
      const state = liveness?.()
      if (state && !state.live) {
        // A restart is the cure: the stuck threads never come back, and every fs, gzip and
        // state write of this process waits behind them.
        throw new ThreadpoolStalledError(
          `the libuv threadpool has not run a job for ${Math.round(state.stalledMs / 1000)} s: file system, gzip and state writes are stuck`,
        )
      }
      return c.json({ status: 'ok' })
    },
  })
  route(app, '/readyz', {
    GET: (c) => {
      c.header('Cache-Control', PROBE_CACHE_CONTROL)
      const r = readiness()
      return c.json(r, r.ready ? 200 : 503)
    },
  })
  route(app, '/replicas', {
    GET: async (c) => {
      c.header('Cache-Control', PROBE_CACHE_CONTROL)
      return c.json(await replicas())
    },
  })
  const doc = openApiDocument(VERSION)
  const page = docsPage(doc)
  route(app, '/openapi.json', { GET: (c) => c.json(doc) })
  route(app, '/docs', { GET: (c) => c.html(page) })
  route(app, '/metrics', {
    GET: async (c) =>
      c.body(await exposition.text(), 200, { 'Content-Type': exposition.contentType }),
  })
}
