import { join } from 'node:path'
import { z } from 'zod'
import { ELEMENT_TYPES } from '../runtime/element-type.js'
import { MODEL_CONFIG_FILE } from './layout.js'
import {
  CONFIG_FILE_MAX_BYTES,
  displayPath,
  readRepositoryFile,
  RepositoryFileError,
  type FileIdentity,
} from './repository-file.js'

const tensorContract = z
  .object({
    name: z.string().min(1),
    type: z.enum(ELEMENT_TYPES),
    /** number: fixed; string: symbolic; null: dynamic without a name. Omit for unknown rank. */
    shape: z
      .array(z.union([z.number().int().min(0), z.string(), z.null()]))
      .nullable()
      .optional(),
  })
  .strict()

/** `<model>/model.json`: serving configuration for one model. Unknown keys are errors (typos). */
export const modelConfigSchema = z
  .object({
    /** Previous versions kept loaded for an instant rollback. */
    retain: z.number().int().min(0).max(64).default(2),
    session: z
      .object({
        intraOpNumThreads: z.number().int().min(0).max(256).optional(),
        interOpNumThreads: z.number().int().min(0).max(256).optional(),
        graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).optional(),
        /** Let onnxruntime's threads spin between runs (a little less latency, a core busy meanwhile). */
        spinning: z.boolean().optional(),
      })
      .strict()
      .default({}),
    /** Dynamic batching: on where the model's rows are independent, unless `enabled` says otherwise. */
    batching: z
      .object({
        /** true: batch without the row-independence check; false: never batch; omitted: batch when checked safe. */
        enabled: z.boolean().optional(),
        /** Most rows (samples) in one run. */
        maxBatchSize: z.number().int().min(1).max(65536).default(64),
        /** How long an idle model may wait to fill a batch; 0 never waits for a timer. */
        maxDelayMs: z.number().min(0).max(1000).default(0),
      })
      .strict()
      .default({ maxBatchSize: 64, maxDelayMs: 0 }),
    /** The contract every version must keep; without it, the active version's signature is the contract. */
    signature: z
      .object({ inputs: z.array(tensorContract), outputs: z.array(tensorContract) })
      .strict()
      .optional(),
    allowSignatureChange: z.boolean().default(false),
    /** Reject versions that have no smoke cases instead of promoting them as unverified. */
    requireSmoke: z.boolean().optional(),
    latency: z
      .object({
        /** p95 of the smoke runs must be within this many milliseconds. */
        maxMs: z.number().positive().optional(),
        /** ... and within this multiple of the active version's p95 on the same cases. */
        maxRatio: z.number().positive().optional(),
      })
      .strict()
      .optional(),
    agreement: z
      .object({
        /** Fraction of smoke inputs on which candidate and active version must agree. */
        min: z.number().min(0).max(1),
        /** Agreement on `output`'s label (argmax), or on every output within the tolerance when omitted. */
        output: z.string().min(1).optional(),
        tolerance: z
          .object({ atol: z.number().min(0).optional(), rtol: z.number().min(0).optional() })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    warmup: z
      .object({
        runs: z.number().int().min(0).max(10_000).default(5),
        batchSizes: z.array(z.number().int().min(1)).min(1).optional(),
      })
      .strict()
      .default({ runs: 5 }),
    /** Where the version's sessions run: on the event loop's thread, or in worker threads. */
    execution: z
      .object({
        /** auto: workers for a large model, a slow one, or one that can loop on its input; else main. Omitted: --execution. */
        mode: z.enum(['auto', 'main', 'workers']).optional(),
        /** Worker threads (sessions) per loaded version. Omitted: 2, or the cores up to 4. */
        workers: z.number().int().min(1).max(64).optional(),
        /** A run in a worker still going after this long fails (504 inference_timeout) and its worker is ended. */
        timeoutSeconds: z.number().positive().max(3600).default(30),
      })
      .strict()
      .default({ timeoutSeconds: 30 }),
    /** Upper bound on the whole gate of one version (load to agreement), in seconds. */
    gateTimeoutSeconds: z.number().positive().max(3600).default(120),
    /** What feedback (`POST /models/{name}/feedback`) scores, and over how many items. */
    feedback: z
      .object({
        /** The output whose value is the prediction's label. Omitted: `label`, else the first int64 or string output, else the argmax of the first float output. */
        output: z.string().min(1).optional(),
        /** Feedback items per version in the sliding window of its accuracy or MAE. */
        window: z.number().int().min(1).max(1_000_000).default(1000),
        /** Predictions remembered per model for feedback (id, version, time, answer; never the inputs). */
        remember: z.number().int().min(0).max(10_000_000).default(100_000),
      })
      .strict()
      .default({ window: 1000, remember: 100_000 }),
    /** After every promotion: the new version is watched on live traffic and rolled back on a breach. */
    probation: z
      .object({
        enabled: z.boolean().default(true),
        /** How long the probation lasts. */
        seconds: z
          .number()
          .positive()
          .max(7 * 24 * 3600)
          .default(300),
        /** Requests the new version must have served before its error rate and latency are judged. */
        minRequests: z.number().int().min(1).default(100),
        /** Feedback items it must have before its accuracy or MAE is judged. */
        minFeedback: z.number().int().min(1).default(50),
        maxErrorRate: z.number().min(0).max(1).default(0.01),
        /** Its p99 may be at most this multiple of the previous version's p99 before the swap. */
        latencyRatio: z.number().positive().default(2),
        /** Its accuracy may be at most this much below the previous version's. */
        accuracyDrop: z.number().min(0).max(1).default(0.05),
        /** ... or, when set, must be at least this (absolute; judged even without a previous accuracy). */
        minAccuracy: z.number().min(0).max(1).optional(),
        /** Its mean absolute error may be at most this multiple of the previous version's. */
        maeRatio: z.number().positive().default(1.5),
      })
      .strict()
      .default({
        enabled: true,
        seconds: 300,
        minRequests: 100,
        minFeedback: 50,
        maxErrorRate: 0.01,
        latencyRatio: 2,
        accuracyDrop: 0.05,
        maeRatio: 1.5,
      }),
    /** How a version that passed its gate reaches clients: at once, mirrored first, or to a share of them. */
    rollout: z
      .discriminatedUnion('mode', [
        z.object({ mode: z.literal('immediate') }).strict(),
        z
          .object({
            mode: z.literal('shadow'),
            /** Share of the model's requests mirrored to the candidate, after the active version answered. */
            fraction: z.number().gt(0).max(1).default(1),
            /** Mirrored requests compared before the candidate is promoted or rejected. */
            minRequests: z.number().int().min(1).max(10_000_000).default(200),
            agreement: z
              .object({
                /** Share of mirrored requests whose answers must agree. */
                min: z.number().min(0).max(1).default(0.98),
                /** Agreement on this output's label; omitted: every shared output within the tolerance. */
                output: z.string().min(1).optional(),
                tolerance: z
                  .object({
                    atol: z.number().min(0).default(1e-5),
                    rtol: z.number().min(0).default(1e-3),
                  })
                  .strict()
                  .default({ atol: 1e-5, rtol: 1e-3 }),
              })
              .strict()
              .default({ min: 0.98, tolerance: { atol: 1e-5, rtol: 1e-3 } }),
          })
          .strict(),
        z
          .object({
            mode: z.literal('canary'),
            /** The candidate's share of requests (%) at each step, increasing. */
            steps: z
              .array(z.number().gt(0).max(100))
              .min(1)
              .max(20)
              .refine((s) => s.every((p, i) => i === 0 || p > s[i - 1]!), 'steps must increase')
              .default([10, 50]),
            /** How long each step lasts before the next (judged by the probation rules meanwhile). */
            stepSeconds: z
              .number()
              .positive()
              .max(7 * 24 * 3600)
              .default(60),
            /** Requests with the same value of this header always reach the same version. */
            stickyHeader: z.string().min(1).max(128).optional(),
          })
          .strict(),
      ])
      .default({ mode: 'immediate' }),
    /** Compare the live distribution of inputs and predicted labels with a reference. */
    drift: z
      .object({
        /** Population stability index at which a feature has drifted. */
        threshold: z.number().positive().default(0.2),
        /** Rows in the live window (and in a reference taken from the first rows served): per feature, 9 bytes a row. */
        window: z.number().int().min(10).max(100_000).default(1000),
        /** How often the live window is compared with the reference. */
        intervalSeconds: z.number().positive().max(3600).default(10),
      })
      .strict()
      .optional(),
    /** A sample of requests written with their answers under `<state-dir>/payloads/<model>/`. */
    payloadLog: z
      .object({
        /** Share of requests written. */
        fraction: z.number().min(0).max(1).default(0.1),
        /** The model's payload files are kept within this many megabytes (the oldest are removed). */
        maxMegabytes: z.number().positive().max(1_000_000).default(100),
      })
      .strict()
      .optional(),
  })
  .strict()

export type ModelConfig = z.infer<typeof modelConfigSchema>

export const DEFAULT_MODEL_CONFIG: ModelConfig = Object.freeze(modelConfigSchema.parse({}))

/** A model's model.json or smoke.json that cannot be used. The message never quotes the file. */
export class ConfigFileError extends Error {
  constructor(
    message: string,
    /** The file as it was examined: a problem is reported once per file, not once per pass. */
    readonly identity: FileIdentity | undefined,
  ) {
    super(message)
  }
}

export interface JsonFileOptions {
  /** The models directory (real path): the file must be inside it, and messages name it relative to it. */
  readonly root: string | undefined
  readonly maxBytes: number
}

/**
 * Reads and validates a JSON config file. A missing file gives `undefined`; anything else wrong
 * throws ConfigFileError naming the file (relative to the models directory) and the rule or the
 * offending path (`session.intraOpNumThreads: ...`).
 */
export async function readJsonFile<T>(
  path: string,
  schema: z.ZodType<T>,
  o: JsonFileOptions,
): Promise<T | undefined> {
  const shown = displayPath(o.root, path)
  let read
  try {
    read = await readRepositoryFile(path, o)
  } catch (e) {
    if (e instanceof RepositoryFileError) throw new ConfigFileError(e.message, e.identity)
    throw e
  }
  if (!read) return undefined
  let json: unknown
  try {
    json = JSON.parse(read.bytes.toString('utf8'))
  } catch (e) {
    throw new ConfigFileError(
      `${shown}: not valid JSON: ${withoutQuote((e as Error).message)}`,
      read.identity,
    )
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`,
    )
    throw new ConfigFileError(`${shown}: ${issues.join('; ')}`, read.identity)
  }
  return parsed.data
}

/** V8 quotes the start of the text it could not parse (`Unexpected token 'r', "root:x:0:0"... is not valid JSON`). */
function withoutQuote(message: string): string {
  return message.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '')
}

export async function readModelConfig(
  root: string | undefined,
  modelDir: string,
): Promise<ModelConfig> {
  return (
    (await readJsonFile(join(modelDir, MODEL_CONFIG_FILE), modelConfigSchema, {
      root,
      maxBytes: CONFIG_FILE_MAX_BYTES,
    })) ?? DEFAULT_MODEL_CONFIG
  )
}
