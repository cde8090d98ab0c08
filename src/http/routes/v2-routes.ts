import type { Context, Hono } from 'hono'
import { clientGone } from '../client-gone.js'
import { z } from 'zod'
import { InvalidRequestError, ModelNotReadyError } from '../../errors.js'
import type { Predictor } from '../../dataplane/predictor.js'
import {
  v2ModelMetadata,
  v2ModelReady,
  v2RepositoryIndex,
  v2Statistics,
} from '../../dataplane/v2-views.js'
import type { Lifecycle, Readiness } from '../../lifecycle/lifecycle.js'
import { clientPredictionId } from '../../dataplane/prediction-id.js'
import type { ModelRegistry } from '../../lifecycle/versions/model-registry.js'
import type { ModelView } from '../../lifecycle/versions/version-state.js'
import { parseExactJson, stringifyExactJson } from '../../v2/exact-json.js'
import {
  v2Feeds,
  v2InferRequestSchema,
  v2OutputNames,
  v2OutputPlan,
  v2Response,
} from '../../v2/inference.js'
import { adminAuth } from '../admin-auth.js'
import { checkJsonContentType, parseJson, readOptionalJsonAs, validateBody } from '../json-body.js'
import { pathParam, route } from '../method-routes.js'
import { readBody } from '../read-body.js'
import { parseVersion } from '../../dataplane/version-number.js'

export interface V2RoutesOptions {
  readonly predictor: Predictor
  readonly registry: ModelRegistry
  readonly lifecycle: Lifecycle
  readonly readiness: () => Readiness
  readonly maxBodyBytes: number
  readonly adminToken: string | undefined
  readonly serverVersion: string
}

/** Extensions of the protocol modelgate implements, as `GET /v2` lists them. */
const V2_EXTENSIONS = ['binary_tensor_data', 'model_repository', 'statistics'] as const

export const repositoryIndexBodySchema = z.object({ ready: z.boolean().optional() }).passthrough()

/**
 * KServe V2 / Open Inference Protocol over REST: health, server and model metadata, model ready,
 * infer (JSON and the binary tensor data extension), and the model repository and statistics
 * extensions. Errors are `{"error": "..."}` (errorPayload knows /v2 paths).
 */
export function registerV2Routes(app: Hono, o: V2RoutesOptions): void {
  const { registry, lifecycle } = o

  route(app, '/v2', {
    GET: (c) => c.json({ name: 'modelgate', version: o.serverVersion, extensions: V2_EXTENSIONS }),
  })
  route(app, '/v2/health/live', { GET: (c) => c.json({ live: true }) })
  route(app, '/v2/health/ready', {
    GET: (c) => {
      const ready = o.readiness().ready
      // The protocol: 200 true, a 4xx false (Triton answers 400). /readyz keeps 503 for probes.
      return c.json({ ready }, ready ? 200 : 400)
    },
  })

  // Statistics extension.
  const stats = (c: Context) =>
    c.json(v2Statistics(registry, c.req.param('name'), c.req.param('version')))
  route(app, '/v2/models/stats', { GET: stats })
  route(app, '/v2/models/:name/stats', { GET: stats })
  route(app, '/v2/models/:name/versions/:version/stats', { GET: stats })

  const metadata = (c: Context) => {
    const { model, version } = target(c)
    return c.json(v2ModelMetadata(model, version))
  }
  route(app, '/v2/models/:name', { GET: metadata })
  route(app, '/v2/models/:name/versions/:version', { GET: metadata })

  const ready = (c: Context) => {
    const { model, version } = target(c)
    const view = v2ModelReady(model, version)
    return c.json(view, view.ready ? 200 : 400)
  }
  route(app, '/v2/models/:name/ready', { GET: ready })
  route(app, '/v2/models/:name/versions/:version/ready', { GET: ready })

  const infer = async (c: Context) => {
    const name = pathParam(c, 'name')
    const rawVersion = c.req.param('version')
    const version = rawVersion === undefined ? undefined : parseVersion(name, rawVersion)
    // Binary extension: the JSON header is the first Inference-Header-Content-Length bytes.
    const headerLength = c.req.header('inference-header-content-length')
    checkJsonContentType(c.req.header('content-type'), { binary: true })
    const bytes = await readBody(c, o.maxBodyBytes)
    let json = bytes
    let binary: Buffer | undefined
    if (headerLength !== undefined) {
      const n = Number(headerLength)
      if (!Number.isSafeInteger(n) || n < 0 || n > bytes.length) {
        throw new InvalidRequestError(
          `Inference-Header-Content-Length ${headerLength} does not fit a ${bytes.length}-byte body`,
        )
      }
      json = bytes.subarray(0, n)
      binary = bytes.subarray(n)
    }
    const request = validateBody(parseJson(json, parseExactJson), v2InferRequestSchema)
    const id =
      clientPredictionId(c.req.header('x-prediction-id'), 'the X-Prediction-Id header') ??
      clientPredictionId(request.id, '"id"')
    const result = await o.predictor.infer(
      { model: name, version, clientGone: clientGone(c), id, header: (h) => c.req.header(h) },
      (signature) => v2Feeds(request, binary, signature),
      (v) => v2OutputNames(request, v.signature, v.outputNames),
      v2OutputPlan(request),
    )
    const response = v2Response(
      request,
      result.version.model,
      result.version.version,
      result.fetched,
      result.outputNames,
      result.id,
    )
    c.header('X-Prediction-Id', result.id)
    c.header('X-Model-Version', String(result.version.version))
    const header = stringifyExactJson(response.header)
    if (response.binary.length === 0)
      return c.body(header, 200, { 'content-type': 'application/json' })
    const headerBytes = Buffer.from(header)
    return c.body(Buffer.concat([headerBytes, ...response.binary]), 200, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(headerBytes.length),
    })
  }
  route(app, '/v2/models/:name/infer', { POST: infer })
  route(app, '/v2/models/:name/versions/:version/infer', { POST: infer })

  // Model repository extension: load = gate and promote (one pass), unload = retire. They change
  // what serves, so they are admin routes.
  const auth = adminAuth(o.adminToken)
  app.use('/v2/repository/*', auth)
  route(app, '/v2/repository/index', {
    POST: async (c) => {
      const body = await readOptionalJsonAs(c, repositoryIndexBodySchema, 64 * 1024)
      return c.json(v2RepositoryIndex(registry, { ready: body.ready === true }))
    },
  })
  route(app, '/v2/repository/models/:name/load', {
    POST: async (c) => {
      const name = pathParam(c, 'name')
      if (!(await lifecycle.load(name))) throw new ModelNotReadyError(name)
      return c.json({})
    },
  })
  route(app, '/v2/repository/models/:name/unload', {
    POST: async (c) => {
      await lifecycle.unload(pathParam(c, 'name'))
      return c.json({})
    },
  })

  function target(c: Context): { model: ModelView; version: number | undefined } {
    const model = registry.require(pathParam(c, 'name'))
    const raw = c.req.param('version')
    return { model, version: raw === undefined ? undefined : parseVersion(model.name, raw) }
  }
}
