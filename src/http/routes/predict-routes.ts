import type { Context, Hono } from 'hono'
import { clientGone } from '../client-gone.js'
import { predictRequestSchema } from '../../dataplane/predict-request.js'
import { type Feedback, feedbackRequestSchema } from '../../dataplane/feedback.js'
import { clientPredictionId } from '../../dataplane/prediction-id.js'
import type { PredictTarget, Predictor } from '../../dataplane/predictor.js'
import { readJsonAs } from '../json-body.js'
import { pathParam, route } from '../method-routes.js'
import { parseVersion } from '../../dataplane/version-number.js'

export interface PredictRoutesOptions {
  readonly predictor: Predictor
  readonly feedback: Feedback
  readonly maxBodyBytes: number
}

/**
 * The simple JSON API: `POST /predict`, `/models/{name}/predict`, `/models/{name}/versions/{v}/predict`,
 * and `POST /models/{name}/feedback` (a data-plane call: the same access as predict).
 */
export function registerPredictRoutes(
  app: Hono,
  { predictor, feedback, maxBodyBytes }: PredictRoutesOptions,
): void {
  const predict = async (c: Context, target: PredictTarget): Promise<Response> => {
    const id = clientPredictionId(c.req.header('x-prediction-id'), 'the X-Prediction-Id header')
    const request = await readJsonAs(c, predictRequestSchema, maxBodyBytes)
    const result = await predictor.predict(
      { ...target, clientGone: clientGone(c), id, header: (name) => c.req.header(name) },
      request,
    )
    c.header('X-Model-Version', String(result.version))
    c.header('X-Prediction-Id', result.id)
    return c.json(result)
  }

  route(app, '/predict', { POST: (c) => predict(c, {}) })
  route(app, '/models/:name/predict', { POST: (c) => predict(c, { model: pathParam(c, 'name') }) })
  route(app, '/models/:name/feedback', {
    POST: async (c) =>
      c.json(
        feedback.submit(
          pathParam(c, 'name'),
          await readJsonAs(c, feedbackRequestSchema, maxBodyBytes),
        ),
      ),
  })
  route(app, '/models/:name/versions/:version/predict', {
    POST: (c) => {
      const model = pathParam(c, 'name')
      return predict(c, { model, version: parseVersion(model, pathParam(c, 'version')) })
    },
  })
}
