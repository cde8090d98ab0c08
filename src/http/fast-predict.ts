import type { IncomingMessage, ServerResponse } from 'node:http'
import { predictRequestSchema } from '../dataplane/predict-request.js'
import { clientPredictionId } from '../dataplane/prediction-id.js'
import type { PredictTarget, Predictor } from '../dataplane/predictor.js'
import type { Logger } from '../log.js'
import { chooseEncoding, COMPRESS_THRESHOLD, compress } from './compression.js'
import { errorPayload, writeErrorPayload } from './error-payload.js'
import { checkJsonContentType, parseJson, validateBody } from './json-body.js'
import { decodePathSegment } from './path-encoding.js'
import { readIncoming } from './read-body.js'
import { parseVersion } from '../dataplane/version-number.js'

/**
 * The prediction routes, served straight from Node's request and response objects. Hono builds
 * a WHATWG Request and Response around each request; for a small model that is most of the
 * time a prediction takes (see bench/). Same routes, same parsing, same errors (errorPayload) and
 * the same compression both ways as the Hono routes; other methods fall through to Hono, which
 * answers them (405).
 */
const ROUTE = /^\/(?:predict|models\/([^/?#]+)\/(?:versions\/([^/?#]+)\/)?predict)(?:\?.*)?$/

export function createFastPredict(o: {
  readonly predictor: Predictor
  readonly maxBodyBytes: number
  readonly logger: Logger
}) {
  return function fastPredict(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST') return false
    const m = ROUTE.exec(req.url ?? '')
    if (!m) return false
    void serve(req, res, m[1], m[2])
    return true
  }

  async function serve(
    req: IncomingMessage,
    res: ServerResponse,
    rawModel: string | undefined,
    rawVersion: string | undefined,
  ): Promise<void> {
    try {
      const model = rawModel === undefined ? undefined : decodePathSegment(rawModel)
      const version = rawVersion === undefined ? undefined : decodePathSegment(rawVersion)
      const id = clientPredictionId(
        header(req.headers['x-prediction-id']),
        'the X-Prediction-Id header',
      )
      checkJsonContentType(req.headers['content-type'])
      const request = validateBody(
        parseJson(await readIncoming(req, o.maxBodyBytes)),
        predictRequestSchema,
      )
      const target: PredictTarget = {
        model,
        version: version === undefined ? undefined : parseVersion(model!, version),
        clientGone: () => req.socket.destroyed,
        id,
        header: (name) => header(req.headers[name.toLowerCase()]),
      }
      const result = await o.predictor.predict(target, request)
      const json = Buffer.from(JSON.stringify(result))
      const encoding =
        json.length >= COMPRESS_THRESHOLD
          ? chooseEncoding(req.headers['accept-encoding'])
          : undefined
      const body = encoding ? await compress(json, encoding) : json
      // A flat header list: Node writes it without walking an object.
      const headers = [
        'content-type',
        'application/json',
        'content-length',
        String(body.length),
        'x-model-version',
        String(result.version),
        'x-prediction-id',
        result.id,
      ]
      if (encoding) headers.push('content-encoding', encoding, 'vary', 'Accept-Encoding')
      res.writeHead(200, headers)
      res.end(body)
    } catch (err) {
      writeErrorPayload(res, errorPayload(err, o.logger, { method: 'POST', path: req.url ?? '' }))
    }
  }
}

/** A header Node joined into an array (given twice) counts as its first value. */
function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
