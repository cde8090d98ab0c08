import type { Hono } from 'hono'
import type { Readiness } from '../../lifecycle/lifecycle.js'
import type { ServerMetrics } from '../../metrics/server-metrics.js'
import { route } from '../method-routes.js'
import { docsPage, openApiDocument } from '../openapi.js'
import { VERSION } from '../../version.js'

export interface OpsRoutesOptions {
  readonly readiness: () => Readiness
  readonly metrics: ServerMetrics
}

/** Kubernetes probes and Prometheus. */
export function registerOpsRoutes(app: Hono, { readiness, metrics }: OpsRoutesOptions): void {
  route(app, '/healthz', { GET: (c) => c.json({ status: 'ok' }) })
  route(app, '/readyz', {
    GET: (c) => {
      const r = readiness()
      return c.json(r, r.ready ? 200 : 503)
    },
  })
  const doc = openApiDocument(VERSION)
  const page = docsPage(doc)
  route(app, '/openapi.json', { GET: (c) => c.json(doc) })
  route(app, '/docs', { GET: (c) => c.html(page) })
  route(app, '/metrics', {
    GET: async (c) => c.body(await metrics.text(), 200, { 'Content-Type': metrics.contentType }),
  })
}
