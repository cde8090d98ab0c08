import type { Hono } from 'hono'
import type { DriftMonitor } from '../../dataplane/drift/drift-monitor.js'
import { describeModel, listModels } from '../../dataplane/model-views.js'
import type { ModelRegistry } from '../../lifecycle/versions/model-registry.js'
import type { LiveFigures } from '../../metrics/live-figures.js'
import type { RequestRates } from '../../metrics/request-rates.js'
import { pathParam, route } from '../method-routes.js'

export function registerModelRoutes(
  app: Hono,
  registry: ModelRegistry,
  live: LiveFigures,
  drift: DriftMonitor | undefined,
  rates: RequestRates | undefined,
): void {
  route(app, '/models', { GET: (c) => c.json({ models: listModels(registry) }) })
  route(app, '/models/:name', {
    GET: (c) => c.json(describeModel(registry, live, pathParam(c, 'name'), drift, rates)),
  })
}
