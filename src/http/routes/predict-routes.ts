import type { Context, Hono } from 'hono'
import { clientGone } from '../client-gone.js'
import { predictRequestSchema } from '../../dataplane/predict-request.js'
import type { PredictTarget, Predictor } from '../../dataplane/predictor.js'
import { readJsonAs } from '../json-body.js'
import { pathParam, route } from '../method-routes.js'
import { parseVersion } from '../version-segment.js'

export interface PredictRoutesOptions {
  readonly predictor: Predictor
  readonly maxBodyBytes: number
}

/** The simple JSON API: `POST /predict`, `/models/{name}/predict`, `/models/{name}/versions/{v}/predict`. */
export function registerPredictRoutes(
  app: Hono,
  { predictor, maxBodyBytes }: PredictRoutesOptions,
): void {
  const predict = async (c: Context, target: PredictTarget): Promise<Response> => {
    const request = await readJsonAs(c, predictRequestSchema, maxBodyBytes)
    const result = await predictor.predict({ ...target, clientGone: clientGone(c) }, request)
    c.header('X-Model-Version', String(result.version))
    return c.json(result)
  }

  route(app, '/predict', { POST: (c) => predict(c, {}) })
  route(app, '/models/:name/predict', { POST: (c) => predict(c, { model: pathParam(c, 'name') }) })
  route(app, '/models/:name/versions/:version/predict', {
    POST: (c) => {
      const model = pathParam(c, 'name')
      return predict(c, { model, version: parseVersion(model, pathParam(c, 'version')) })
    },
  })
}
