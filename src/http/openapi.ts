import { z } from 'zod'
import { feedbackRequestSchema } from '../dataplane/feedback.js'
import { predictRequestSchema } from '../dataplane/predict-request.js'
import { ELEMENT_TYPES } from '../runtime/element-type.js'
import { V2_TO_ELEMENT } from '../v2/datatypes.js'
import { v2InferRequestSchema } from '../v2/inference.js'
import { promoteBodySchema, abortBodySchema, rollbackBodySchema } from './routes/admin-routes.js'
import { repositoryIndexBodySchema } from './routes/v2-routes.js'

/**
 * The OpenAPI 3.1 document, built from the zod schemas that validate the requests (request bodies
 * are those very schemas, converted to JSON Schema 2020-12, which OpenAPI 3.1 uses). Responses are
 * described by schemas declared here. A test checks every route the server answers is in it.
 */

const json = (schema: z.ZodType) =>
  z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as Record<string, unknown>

const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
})
const v2ErrorSchema = z.object({ error: z.string() })
const tensorSpec = z.object({
  name: z.string(),
  type: z.enum(ELEMENT_TYPES),
  shape: z
    .array(z.union([z.number(), z.string(), z.null()]))
    .nullable()
    .describe(
      'number: fixed; string: symbolic; null: dynamic without a name; null shape: unknown rank',
    ),
})
const predictResponse = z.object({
  id: z
    .string()
    .describe(
      'the prediction id: X-Prediction-Id of the request, or one made up; feedback names it',
    ),
  model: z.string(),
  version: z.number().int(),
  outputs: z
    .record(z.string(), z.unknown())
    .describe('per output: nested arrays, or {type, shape, data} with output_format "typed"'),
})
const liveFigures = z
  .object({
    requests: z.number().int(),
    errors: z.number().int(),
    errorRate: z.number().nullable(),
    p50Ms: z.number().nullable(),
    p99Ms: z.number().nullable(),
    feedback: z.number().int(),
    accuracy: z.number().nullable(),
    mae: z.number().nullable(),
    requestsPerSecond: z
      .number()
      .nullable()
      .describe('requests answered per second over the last 10 s (null: not measured yet)'),
  })
  .describe('over its last requests and feedback items (null: no sample yet)')
const probationRule = z.object({
  rule: z.enum(['error_rate', 'latency', 'accuracy', 'mae']),
  observed: z.number().nullable(),
  limit: z.number().nullable(),
  sample: z.number().int(),
  needed: z.number().int().describe('the sample size at which the rule is judged'),
  status: z.enum(['waiting', 'ok', 'breached', 'no_baseline']),
})
const probationView = z
  .object({
    version: z.number().int(),
    previous: z.number().int(),
    startedAt: z.string(),
    endsAt: z.string(),
    rules: z.array(probationRule),
  })
  .nullable()
  .describe('the probation running now (null: none)')
const rolloutView = z
  .object({
    version: z.number().int(),
    mode: z.enum(['shadow', 'canary']),
    against: z.number().int().describe('the active version it is compared with'),
    startedAt: z.string(),
    step: z.number().int().nullable().describe('canary: the step running (0-based)'),
    percent: z.number().nullable().describe("canary: the candidate's share of requests now (%)"),
    steps: z.array(z.number()).nullable(),
    stepEndsAt: z.string().nullable(),
    shadow: z
      .object({
        mirrored: z.number().int(),
        agreed: z.number().int(),
        failed: z.number().int(),
        dropped: z.number().int().describe('not mirrored: the candidate was busy'),
        agreement: z.number().nullable(),
        meanAbsDiff: z.number().nullable(),
        needed: z.number().int(),
        min: z.number(),
      })
      .nullable(),
    rules: z
      .array(probationRule)
      .nullable()
      .describe('canary: the probation rules on this step, against the active version'),
  })
  .nullable()
  .describe('a candidate being rolled out beside the active version (null: none)')
const driftView = z
  .object({
    reference: z
      .enum(['reference.json', 'first_window', 'loading'])
      .describe(
        "reference.json in the model's folder, or the first rows served by the active version",
      ),
    referenceError: z
      .string()
      .nullable()
      .describe('why reference.json could not be used (the first window is the reference instead)'),
    referenceRows: z.number().int(),
    referenceReady: z
      .boolean()
      .describe(
        "the reference's bins are fixed (on the next judgement once it is complete): later rows are live",
      ),
    liveRows: z
      .number()
      .int()
      .describe('rows in the live window (judged once it holds drift.window)'),
    detected: z
      .boolean()
      .describe('a drift episode is open (PSI >= threshold, not yet below half)'),
    features: z.array(
      z.object({
        input: z.string().describe('the input, or the label output for prediction drift'),
        feature: z.string().describe('column ("3"), "" (rank-1 input), mean, std, or frequency'),
        psi: z.number(),
      }),
    ),
  })
  .nullable()
  .describe("the active version's input and prediction drift (null: no drift in model.json)")
const stage = z.object({
  stage: z.enum(['load', 'signature', 'smoke', 'latency', 'agreement', 'warmup']),
  status: z.enum(['passed', 'failed', 'skipped']),
  ms: z.number(),
  reason: z.string().optional(),
  message: z.string().optional(),
  details: z.unknown().optional(),
})
const modelSummary = z.object({
  name: z.string(),
  active: z.number().int().nullable(),
  versions: z.array(z.object({ version: z.number().int(), status: z.string() })),
})
const modelDetail = z.object({
  name: z.string(),
  active: z.number().int().nullable(),
  retained: z.array(z.number().int()),
  configError: z.string().nullable(),
  versions: z.array(
    z.object({
      version: z.number().int(),
      status: z.string(),
      source: z.string(),
      onDisk: z.boolean(),
      sha256: z.string().nullable(),
      loaded: z.boolean(),
      stage: z.string().optional(),
      reason: z.string().optional(),
      message: z.string().optional(),
      note: z.string().optional().describe('discovered: what it waits for'),
      unverified: z.boolean().optional(),
      rolledBack: z.object({ reason: z.string(), at: z.string() }).optional(),
      file: z
        .object({
          sha256: z.string(),
          verdict: z.enum(['passed', 'rejected']),
          stage: z.string().optional(),
          reason: z.string().optional(),
          message: z.string().optional(),
        })
        .optional()
        .describe("the file's own verdict, when it holds other bytes than the version serves"),
      gate: z
        .object({
          passed: z.boolean(),
          ms: z.number(),
          stages: z.array(stage),
          warnings: z.array(z.string()),
        })
        .optional(),
      live: liveFigures.nullable(),
    }),
  ),
  probation: probationView,
  rollout: rolloutView,
  drift: driftView,
  signature: z
    .object({
      inputs: z.array(tensorSpec),
      outputs: z.array(tensorSpec),
      omittedOutputs: z.array(z.object({ name: z.string(), reason: z.string() })),
    })
    .nullable(),
  batching: z.object({ enabled: z.boolean(), reason: z.string() }).nullable(),
  execution: z
    .object({ mode: z.enum(['main', 'workers']), workers: z.number().int(), reason: z.string() })
    .nullable(),
  refused: z
    .array(z.object({ path: z.string(), reason: z.string() }))
    .describe('entries of the folder refused for safety'),
  restart: z
    .object({ active: z.number().int().nullable(), why: z.string() })
    .describe('what a restart would serve'),
  warnings: z.array(z.string()),
})
const replicasView = z.object({
  self: z.string(),
  gatekeeper: z.string().nullable(),
  generation: z.number().int().nullable(),
  replicas: z.array(
    z.object({
      id: z.string(),
      host: z.string(),
      pid: z.number().int(),
      startedAt: z.string(),
      lastSeen: z.string(),
      role: z.enum(['gatekeeper', 'follower']),
      generation: z.number().int().nullable(),
      active: z.record(z.string(), z.number().int().nullable()),
      behind: z.record(z.string(), z.string()).optional(),
      stale: z.boolean(),
    }),
  ),
})

const readiness = z.object({
  ready: z.boolean(),
  stateWriteFailing: z
    .boolean()
    .describe(
      'true while state.json cannot be written (retried with backoff); readiness itself stays true',
    ),
  stateWriteError: z
    .object({})
    .passthrough()
    .optional()
    .describe('the last failed write, while stateWriteFailing'),
  models: z.record(
    z.string(),
    z.object({ active: z.number().int().nullable(), status: z.string() }),
  ),
})
const rollbackResponse = z.object({
  model: z.string(),
  from: z.number().int(),
  to: z.number().int(),
  warm: z.boolean(),
  ms: z.number(),
  reason: z.string(),
  stages: z.array(stage).optional(),
})
const promoteResponse = z.object({
  model: z.string(),
  from: z.number().int().nullable(),
  to: z.number().int(),
  warm: z.boolean(),
  ms: z.number(),
  stages: z.array(stage).optional(),
})
const v2Datatype = z.enum(Object.keys(V2_TO_ELEMENT) as [string, ...string[]])
const v2TensorMeta = z.object({
  name: z.string(),
  datatype: v2Datatype,
  shape: z.array(z.number().int()).describe('-1: dynamic'),
})
const v2Output = v2TensorMeta.extend({
  data: z.array(z.unknown()).optional(),
  parameters: z.object({ binary_data_size: z.number().int() }).partial().optional(),
})
const v2InferResponse = z.object({
  model_name: z.string(),
  model_version: z.string(),
  id: z.string().describe("the request's id (or X-Prediction-Id), or one made up"),
  outputs: z.array(v2Output),
})
const v2ModelMetadata = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.string(),
  inputs: z.array(v2TensorMeta),
  outputs: z.array(v2TensorMeta),
})

const eventStreamExample =
  'id: 7\nevent: promoted\ndata: {"id":7,"type":"promoted","model":"iris","version":3,"time":"2026-12-03T10:41:07.120Z","sha256":"9f2c...","trigger":"watch","from":2,"stages":[...]}\n\n'

type Op = {
  summary: string
  tags: string[]
  body?: z.ZodType
  optionalBody?: boolean
  ok: z.ZodType | 'text' | 'html' | 'empty' | 'event-stream'
  admin?: boolean
  v2?: boolean
  query?: { name: string; description: string }[]
  binary?: boolean
  /** What a request and its answer look like (each checked against its schema by a test). */
  example?: { request?: unknown; response?: unknown }
  /** Answers other than 200 that are part of the route's contract (besides the error codes). */
  statuses?: Record<string, string>
}

/** The examples: the bundled iris model (4 features in, a label and 3 probabilities out). */
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
const predictExample = {
  request: { inputs: { features: [IRIS_ROW] }, outputs: ['label'] },
  response: { id: 'req-7', model: 'iris', version: 2, outputs: { label: [0] } },
}
const stageExample = { stage: 'load', status: 'passed', ms: 4.1 }
const v2InferExample = {
  request: {
    id: '42',
    inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: IRIS_ROW }],
    outputs: [{ name: 'label' }],
  },
  response: {
    model_name: 'iris',
    model_version: '2',
    id: '42',
    outputs: [{ name: 'label', datatype: 'INT64', shape: [1], data: [0] }],
  },
}
const v2MetadataExample = {
  response: {
    name: 'iris',
    versions: ['1', '2'],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }],
    outputs: [
      { name: 'label', datatype: 'INT64', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
    ],
  },
}

const rollbackExample = {
  request: { reason: 'bad release, see INC-42' },
  response: {
    model: 'iris',
    from: 2,
    to: 1,
    warm: true,
    ms: 0.21,
    reason: 'bad release, see INC-42',
  },
}
const v2ReadyExample = { response: { name: 'iris', ready: true } }
const v2NotReady = {
  '400': 'not ready: {"name", "ready": false} (the protocol asks for a 4xx; Triton answers 400)',
}

const ops: Record<string, Partial<Record<'get' | 'post', Op>>> = {
  '/predict': {
    post: {
      summary: 'Predict with the default model',
      tags: ['predict'],
      body: predictRequestSchema,
      ok: predictResponse,
      example: predictExample,
    },
  },
  '/models/{name}/predict': {
    post: {
      summary: "Predict with a model's active version",
      tags: ['predict'],
      body: predictRequestSchema,
      ok: predictResponse,
      example: predictExample,
    },
  },
  '/models/{name}/versions/{version}/predict': {
    post: {
      summary: 'Predict with one loaded version',
      tags: ['predict'],
      body: predictRequestSchema,
      ok: predictResponse,
      example: {
        request: {
          inputs: { features: { type: 'float32', shape: [1, 4], data: IRIS_ROW } },
          output_format: 'typed',
        },
        response: {
          id: 'kx3Jq0aB-1f',
          model: 'iris',
          version: 2,
          outputs: {
            label: { type: 'int64', shape: [1], data: [0] },
            probabilities: { type: 'float32', shape: [1, 3], data: [0.995, 0.0046, 0.00004] },
          },
        },
      },
    },
  },
  '/models/{name}/feedback': {
    post: {
      summary: 'The truth about predictions already answered: accuracy and MAE per version',
      tags: ['predict'],
      body: feedbackRequestSchema,
      ok: z.object({
        accepted: z.number().int(),
        unknown: z.array(z.string()).describe('ids not remembered (never seen, or forgotten)'),
        duplicates: z.number().int().describe('items for a prediction that already had feedback'),
        invalid: z
          .array(z.object({ id: z.string(), reason: z.string() }))
          .describe('items that cannot score their prediction'),
        relayed: z
          .array(z.string())
          .optional()
          .describe(
            'with other replicas on the state directory: ids this one did not answer, handed to the one that did',
          ),
      }),
      example: {
        request: {
          items: [
            { id: 'req-7', label: 0 },
            { id: 'req-8', label: 2 },
          ],
        },
        response: { accepted: 2, unknown: [], duplicates: 0, invalid: [] },
      },
    },
  },
  '/models': {
    get: {
      summary: 'Every model: active version, versions and their states',
      tags: ['models'],
      ok: z.object({ models: z.array(modelSummary) }),
      example: {
        response: {
          models: [
            {
              name: 'iris',
              active: 2,
              versions: [
                { version: 1, status: 'retained' },
                { version: 2, status: 'active' },
              ],
            },
          ],
        },
      },
    },
  },
  '/models/{name}': {
    get: {
      summary: 'One model: versions, gate results, signature, batching, execution',
      tags: ['models'],
      ok: modelDetail,
    },
  },
  '/healthz': {
    get: {
      summary: 'Liveness',
      tags: ['ops'],
      ok: z.object({ status: z.literal('ok') }),
      example: { response: { status: 'ok' } },
      statuses: { '503': 'threadpool_stalled: the process should be restarted' },
    },
  },
  '/readyz': {
    get: {
      summary: 'Readiness: 200 once every model serves or has nothing left to try',
      tags: ['ops'],
      ok: readiness,
      example: {
        response: {
          ready: true,
          stateWriteFailing: false,
          models: { iris: { active: 2, status: 'serving' } },
        },
      },
      statuses: {
        '503':
          'not ready yet (models still loading), or shutting down; same body with "ready": false',
      },
    },
  },
  '/replicas': {
    get: {
      summary:
        'The replicas sharing this state directory (from their heartbeats, each second): the gatekeeper, what each serves, which is behind (`behind`) or not seen for 5 s (`stale`)',
      tags: ['ops'],
      ok: replicasView,
      example: {
        response: {
          self: 'web-1-4121',
          gatekeeper: 'web-1-4121',
          generation: 3,
          replicas: [
            {
              id: 'web-1-4121',
              host: 'web-1',
              pid: 4121,
              startedAt: '2026-03-02T09:14:07.311Z',
              lastSeen: '2026-03-02T09:20:11.052Z',
              role: 'gatekeeper',
              generation: 3,
              active: { iris: 2 },
              stale: false,
            },
            {
              id: 'web-2-977',
              host: 'web-2',
              pid: 977,
              startedAt: '2026-03-02T09:14:09.870Z',
              lastSeen: '2026-03-02T09:20:10.630Z',
              role: 'follower',
              generation: 3,
              active: { iris: 2 },
              stale: false,
            },
          ],
        },
      },
    },
  },
  '/metrics': { get: { summary: 'Prometheus metrics', tags: ['ops'], ok: 'text' } },
  '/openapi.json': {
    get: {
      summary: 'This document',
      tags: ['ops'],
      ok: z.object({ openapi: z.string() }).passthrough(),
    },
  },
  '/docs': { get: { summary: 'This document, for people', tags: ['ops'], ok: 'text' } },
  '/': {
    get: {
      summary: 'Where things are: a browser (Accept: text/html) is sent to /ui (303)',
      tags: ['ui'],
      ok: z.object({
        name: z.literal('modelgate'),
        version: z.string(),
        ui: z.string(),
        models: z.string(),
        docs: z.string(),
        openapi: z.string(),
      }),
      statuses: { '303': 'Accept names text/html: Location /ui' },
    },
  },
  '/ui': {
    get: {
      summary: 'Dashboard (HTML): every model, its active version and live figures',
      tags: ['ui'],
      ok: 'html',
    },
  },
  '/ui/models/{name}': {
    get: {
      summary:
        'Dashboard (HTML): one model, its versions, rollout, probation, drift; the history with admin access',
      tags: ['ui'],
      ok: 'html',
    },
  },
  '/ui/assets/{file}': {
    get: {
      summary: "The dashboard's script, style sheet and icon (app.js, style.css, favicon.svg)",
      tags: ['ui'],
      ok: 'text',
    },
  },
  '/rollback': {
    post: {
      summary: 'Roll the default model back',
      tags: ['admin'],
      body: rollbackBodySchema,
      optionalBody: true,
      ok: rollbackResponse,
      admin: true,
      example: rollbackExample,
    },
  },
  '/models/{name}/rollback': {
    post: {
      summary: 'Roll a model back (warm: pointer swap; cold: gated first)',
      tags: ['admin'],
      body: rollbackBodySchema,
      optionalBody: true,
      ok: rollbackResponse,
      admin: true,
      example: rollbackExample,
    },
  },
  '/models/{name}/promote': {
    post: {
      summary: 'Promote a version (gated unless retained or forced)',
      tags: ['admin'],
      body: promoteBodySchema,
      ok: promoteResponse,
      admin: true,
      example: {
        request: { version: 2 },
        response: { model: 'iris', from: 1, to: 2, warm: false, ms: 61.2, stages: [stageExample] },
      },
    },
  },
  '/models/{name}/rollout/abort': {
    post: {
      summary:
        'End the rollout (shadow or canary): every request goes to the active version, the candidate is marked rolled back',
      tags: ['admin'],
      body: abortBodySchema,
      optionalBody: true,
      ok: z.object({
        model: z.string(),
        version: z.number().int().describe('the candidate, now rolled back'),
        mode: z.enum(['shadow', 'canary']),
        active: z.number().int(),
      }),
      admin: true,
      statuses: { '409': 'conflict: no rollout in progress' },
      example: {
        request: { reason: 'users report slow answers' },
        response: { model: 'iris', version: 4, mode: 'canary', active: 3 },
      },
    },
  },
  '/models/{name}/history': {
    get: {
      summary: 'Lifecycle events, oldest first',
      tags: ['admin'],
      ok: z.object({ model: z.string(), entries: z.array(z.record(z.string(), z.unknown())) }),
      admin: true,
      query: [{ name: 'limit', description: 'at most this many, 1 to 200 (default 100)' }],
    },
  },
  '/events': {
    get: {
      summary:
        'Lifecycle events as Server-Sent Events (promoted, rejected, rolled_back, ...): every history entry, live; a comment every 15 s',
      tags: ['admin'],
      ok: 'event-stream',
      admin: true,
      query: [{ name: 'model', description: "only this model's events" }],
      statuses: {
        '400':
          'invalid_request: a Last-Event-ID header that is not an event id. With a valid one, the kept events after it (the last 1000) are sent first',
      },
    },
  },
  '/v2': {
    get: {
      summary: 'Server metadata',
      tags: ['v2'],
      v2: true,
      ok: z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) }),
    },
  },
  '/v2/health/live': {
    get: { summary: 'Server live', tags: ['v2'], v2: true, ok: z.object({ live: z.boolean() }) },
  },
  '/v2/health/ready': {
    get: {
      summary: 'Server ready',
      tags: ['v2'],
      v2: true,
      ok: z.object({ ready: z.boolean() }),
      example: { response: { ready: true } },
      statuses: {
        '400': 'not ready: {"ready": false} (the protocol asks for a 4xx; Triton answers 400)',
      },
    },
  },
  '/v2/models/{name}': {
    get: {
      summary: 'Model metadata',
      tags: ['v2'],
      v2: true,
      ok: v2ModelMetadata,
      example: v2MetadataExample,
    },
  },
  '/v2/models/{name}/versions/{version}': {
    get: {
      summary: 'Model version metadata',
      tags: ['v2'],
      v2: true,
      ok: v2ModelMetadata,
      example: v2MetadataExample,
    },
  },
  '/v2/models/{name}/ready': {
    get: {
      summary: 'Model ready',
      tags: ['v2'],
      v2: true,
      ok: z.object({ name: z.string(), ready: z.boolean() }),
      example: v2ReadyExample,
      statuses: v2NotReady,
    },
  },
  '/v2/models/{name}/versions/{version}/ready': {
    get: {
      summary: 'Model version ready',
      tags: ['v2'],
      v2: true,
      ok: z.object({ name: z.string(), ready: z.boolean() }),
      example: v2ReadyExample,
      statuses: v2NotReady,
    },
  },
  '/v2/models/{name}/infer': {
    post: {
      summary: 'Inference (JSON, or the binary tensor data extension)',
      tags: ['v2'],
      v2: true,
      body: v2InferRequestSchema,
      ok: v2InferResponse,
      binary: true,
      example: v2InferExample,
    },
  },
  '/v2/models/{name}/versions/{version}/infer': {
    post: {
      summary: 'Inference on one loaded version',
      tags: ['v2'],
      v2: true,
      body: v2InferRequestSchema,
      ok: v2InferResponse,
      binary: true,
      example: v2InferExample,
    },
  },
  '/v2/models/stats': {
    get: {
      summary: 'Statistics of every loaded version (statistics extension)',
      tags: ['v2'],
      v2: true,
      ok: z.object({ model_stats: z.array(z.record(z.string(), z.unknown())) }),
    },
  },
  '/v2/models/{name}/stats': {
    get: {
      summary: "Statistics of a model's loaded versions",
      tags: ['v2'],
      v2: true,
      ok: z.object({ model_stats: z.array(z.record(z.string(), z.unknown())) }),
    },
  },
  '/v2/models/{name}/versions/{version}/stats': {
    get: {
      summary: 'Statistics of one loaded version',
      tags: ['v2'],
      v2: true,
      ok: z.object({ model_stats: z.array(z.record(z.string(), z.unknown())) }),
    },
  },
  '/v2/repository/index': {
    post: {
      summary: 'Every version and its state (model repository extension)',
      tags: ['v2'],
      v2: true,
      admin: true,
      body: repositoryIndexBodySchema,
      optionalBody: true,
      ok: z.array(
        z.object({ name: z.string(), version: z.string(), state: z.string(), reason: z.string() }),
      ),
    },
  },
  '/v2/repository/models/{name}/load': {
    post: {
      summary: 'Load a model: one gated pass over its folder',
      tags: ['v2'],
      v2: true,
      admin: true,
      ok: z.object({}),
    },
  },
  '/v2/repository/models/{name}/unload': {
    post: {
      summary: 'Unload a model: stop serving it (until load or a restart)',
      tags: ['v2'],
      v2: true,
      admin: true,
      ok: z.object({}),
    },
  },
}

function operation(path: string, op: Op): Record<string, unknown> {
  const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }))
  for (const q of op.query ?? [])
    params.push({
      name: q.name,
      in: 'query',
      required: false,
      schema: { type: 'string' },
      description: q.description,
    } as never)
  const errorRef = { $ref: op.v2 ? '#/components/schemas/V2Error' : '#/components/schemas/Error' }
  const okContent =
    op.ok === 'text'
      ? { 'text/plain': { schema: { type: 'string' } } }
      : op.ok === 'html'
        ? { 'text/html': { schema: { type: 'string' } } }
        : op.ok === 'event-stream'
          ? {
              'text/event-stream': {
                schema: { type: 'string' },
                example: eventStreamExample,
              },
            }
          : op.ok === 'empty'
            ? undefined
            : {
                'application/json': {
                  schema: json(op.ok),
                  ...(op.example?.response !== undefined && { example: op.example.response }),
                },
              }
  const others = Object.fromEntries(
    Object.entries(op.statuses ?? {}).map(([status, description]) => [
      status,
      { description, content: { 'application/json': { schema: errorRef } } },
    ]),
  )
  const content: Record<string, unknown> = {}
  if (op.body)
    content['application/json'] = {
      schema: json(op.body),
      ...(op.example?.request !== undefined && { example: op.example.request }),
    }
  if (op.binary)
    content['application/octet-stream'] = {
      schema: { type: 'string', format: 'binary' },
      description: 'JSON header (Inference-Header-Content-Length bytes) then raw tensors',
    }
  return {
    summary: op.summary,
    tags: op.tags,
    ...(params.length && { parameters: params }),
    ...(op.body && { requestBody: { required: !op.optionalBody, content } }),
    ...(op.admin && { security: [{ adminToken: [] }] }),
    responses: {
      '200': { description: 'OK', ...(okContent && { content: okContent }) },
      ...others,
      default: { description: 'An error', content: { 'application/json': { schema: errorRef } } },
    },
  }
}

export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, unknown> = {}
  for (const [path, methods] of Object.entries(ops)) {
    paths[path] = Object.fromEntries(
      Object.entries(methods).map(([m, op]) => [m, operation(path, op!)]),
    )
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'modelgate',
      version,
      description:
        'ONNX inference server for continuous deployment of models: a simple JSON API, the KServe V2 protocol, admin routes.',
    },
    paths,
    components: {
      schemas: { Error: json(errorSchema), V2Error: json(v2ErrorSchema) },
      securitySchemes: {
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'MODELGATE_ADMIN_TOKEN; with no token configured, admin routes answer loopback clients only',
        },
      },
    },
  }
}

/** The parts of an OpenAPI operation the docs page shows. */
interface DocumentedOperation {
  summary: string
  security?: unknown
  requestBody?: { content?: Record<string, { schema?: unknown; example?: unknown }> }
  responses: Record<
    string,
    { description: string; content?: Record<string, { schema?: unknown; example?: unknown }> }
  >
}

/** The same document as a page: one section per path, request and response schemas shown. */
export function docsPage(doc: Record<string, unknown>): string {
  const esc = (s: string) =>
    s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)
  const sections: string[] = []
  for (const [path, methods] of Object.entries(
    doc.paths as Record<string, Record<string, DocumentedOperation>>,
  )) {
    for (const [method, op] of Object.entries(methods)) {
      const request = op.requestBody?.content?.['application/json']
      const ok = op.responses?.['200']?.content?.['application/json']
      const pretty = (value: unknown) => `<pre>${esc(JSON.stringify(value, null, 2))}</pre>`
      const statuses = Object.entries(op.responses)
        .filter(([status]) => status !== '200' && status !== 'default')
        .map(([status, r]) => `<li><code>${status}</code> ${esc(r.description)}</li>`)
      sections.push(
        `<section><h3><code>${method.toUpperCase()} ${esc(path)}</code>${op.security ? ' <small>admin</small>' : ''}</h3><p>${esc(op.summary)}</p>` +
          (request?.example !== undefined
            ? `<p>Example request</p>${pretty(request.example)}`
            : '') +
          (ok?.example !== undefined ? `<p>Example answer (200)</p>${pretty(ok.example)}` : '') +
          (statuses.length ? `<ul>${statuses.join('')}</ul>` : '') +
          (request
            ? `<details><summary>request body schema</summary>${pretty(request.schema)}</details>`
            : '') +
          (ok ? `<details><summary>answer schema</summary>${pretty(ok.schema)}</details>` : '') +
          '<p><small>errors: <code>{"error": {"code", "message"}}</code> (V2 routes: <code>{"error": "..."}</code>), see the README\'s error table</small></p></section>',
      )
    }
  }
  const info = doc.info as { title: string; version: string; description: string }
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(info.title)} API</title><style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}section{border-top:1px solid #ddd;padding:.5rem 0}pre{background:#f6f6f6;padding:.5rem;overflow:auto}small{color:#a33}</style></head><body><h1>${esc(info.title)} ${esc(info.version)}</h1><p>${esc(info.description)} Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>${sections.join('')}</body></html>`
}
