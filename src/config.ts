import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { z } from 'zod'
import { MODEL_FILE_MAX_BYTES } from './repository/repository-file.js'

/**
 * Server configuration: CLI flags > MODELGATE_* environment > defaults, validated once with zod and
 * frozen. The only module that reads process.env (it is handed in, so tests pass their own).
 */

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

const SIZE = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 2 ** 20,
  mb: 2 ** 20,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 2 ** 30,
  gib: 2 ** 30,
}

const byteSize = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const m = SIZE.exec(String(value).trim())
  const bytes = m ? Number(m[1]) * SIZE_UNITS[(m[2] ?? 'b').toLowerCase()]! : NaN
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a size such as 33554432, 512k or 32mb, got '${value}'`,
    })
    return z.NEVER
  }
  return bytes
})

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

/** A timeout in seconds; never 0, which would mean none to Node. */
const seconds = z.coerce.number().min(0.1).max(86_400)

const flag = z.union([z.boolean(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'boolean') return value
  const v = value.trim().toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(v)) return true
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false
  ctx.addIssue({ code: 'custom', message: `expected true or false, got '${value}'` })
  return z.NEVER
})

const splitUrls = (value: string) => value.split(/\s+/).filter((url) => url !== '')

const webhookUrl = z.string().superRefine((value, ctx) => {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol))
    ctx.addIssue({ code: 'custom', message: `expected an http:// or https:// URL, got '${value}'` })
})

/** Each key is also a flag (`--kebab-case`) and an environment variable (`MODELGATE_SNAKE_CASE`). */
export const serveOptionsSchema = z.object({
  models: z.string().min(1).default('models'),
  port: integer(0, 65535).default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  /** The Open Inference Protocol over gRPC listens here too (same host); unset: no gRPC. */
  grpcPort: integer(0, 65535).optional(),
  /** The largest gRPC message received (a ModelInferRequest with its tensors); larger: RESOURCE_EXHAUSTED. */
  grpcMaxMessageSize: byteSize.default(32 * 2 ** 20),
  stateDir: z.string().min(1).optional(),
  defaultModel: z.string().min(1).optional(),
  maxBodySize: byteSize.default(32 * 2 ** 20),
  /** The most one answer may take once encoded, estimated from the outputs' dims before encoding. */
  maxOutputSize: byteSize.default(64 * 2 ** 20),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** A single file is read only after it has been unchanged this long. */
  stabilityMs: integer(0, 600_000).default(500),
  /** Poll the file system instead of native events (NFS, SMB, some container volumes). */
  poll: flag.default(false),
  /** Every model folder is re-listed this often, in case an event was lost. */
  rescanMs: integer(100, 3_600_000).default(5000),
  /** Reject versions that have no smoke cases instead of promoting them as unverified. */
  requireSmoke: flag.default(false),
  /** On SIGTERM, in-flight requests get this long (seconds) to finish. */
  shutdownTimeout: z.coerce.number().min(0).max(3600).default(30),
  /** A file holding the admin token (a mounted secret); MODELGATE_ADMIN_TOKEN also works. */
  adminTokenFile: z.string().min(1).optional(),
  /** Request-body bytes buffered at once across all requests; bodies beyond it get 503 overloaded. */
  maxInflightBodySize: byteSize.default(256 * 2 ** 20),
  /** Seconds a client has to send its request headers (the connection is then closed with 408). */
  headerTimeout: seconds.default(10),
  /** Seconds a request body may go without a byte before it is ended with 408 request_timeout. */
  bodyTimeout: seconds.default(30),
  /** Seconds a client has to send a whole request, headers and body. */
  requestTimeout: seconds.default(300),
  /** Larger model files are refused (`too_large`) before they are read: a model is held whole in memory. */
  maxModelSize: byteSize
    .refine((n) => n <= MODEL_FILE_MAX_BYTES, {
      message: `at most ${MODEL_FILE_MAX_BYTES} bytes (2 GiB - 1): onnxruntime-node takes a model as one buffer, and an ONNX file cannot be larger`,
    })
    .default(MODEL_FILE_MAX_BYTES),
  /** /healthz fails once a probe of the libuv threadpool has waited this long (ms). */
  threadpoolStallMs: integer(100, 3_600_000).default(10_000),
  /** Where models run when their model.json does not say: auto, main (the event loop's thread) or workers. */
  execution: z.enum(['auto', 'main', 'workers']).default('auto'),
  /** The most memory modelgate may use (RSS); a version that would not fit is refused. Default: what the system (or cgroup) has. */
  maxMemory: byteSize.optional(),
  /** Every lifecycle event is POSTed to each (the flag repeats; the environment variable lists them, space-separated). */
  webhook: z
    .union([z.string(), z.array(z.string())])
    .transform((value) => (typeof value === 'string' ? [value] : value).flatMap(splitUrls))
    .pipe(z.array(webhookUrl))
    .default([]),
  /** A file holding the secret that signs webhook bodies; MODELGATE_WEBHOOK_SECRET also works. */
  webhookSecretFile: z.string().min(1).optional(),
  /** Server processes behind the one port (Node's cluster); 1: this process serves, no cluster. */
  workers: integer(1, 64).default(1),
})

/** Flags that take no value. */
export const BOOLEAN_OPTIONS: ReadonlySet<OptionKey> = new Set(['poll', 'requireSmoke'])
/** Flags that may be given more than once. */
export const REPEATABLE_OPTIONS: ReadonlySet<OptionKey> = new Set(['webhook'])

export type ServeOptionsInput = z.input<typeof serveOptionsSchema>

export interface ServeConfig {
  readonly modelsDir: string
  readonly port: number
  readonly host: string
  /** undefined: no gRPC listener; 0: any free port. */
  readonly grpcPort: number | undefined
  readonly grpcMaxMessageBytes: number
  readonly stateDir: string
  readonly defaultModel: string | undefined
  readonly maxBodyBytes: number
  readonly maxOutputBytes: number
  readonly logLevel: LogLevel
  readonly stabilityMs: number
  readonly poll: boolean
  readonly rescanMs: number
  readonly requireSmoke: boolean
  readonly shutdownTimeoutMs: number
  /** Bearer token for admin routes; undefined: admin routes answer loopback clients only. */
  readonly adminToken: string | undefined
  readonly maxInflightBodyBytes: number
  readonly headerTimeoutMs: number
  readonly bodyTimeoutMs: number
  readonly requestTimeoutMs: number
  readonly maxModelBytes: number
  readonly threadpoolStallMs: number
  readonly execution: 'auto' | 'main' | 'workers'
  readonly maxMemoryBytes: number | undefined
  readonly webhooks: readonly string[]
  /** Signs webhook bodies (X-Modelgate-Signature); undefined: unsigned. */
  readonly webhookSecret: string | undefined
  /** Server processes sharing the port; above 1, this process is their primary and serves nothing. */
  readonly workers: number
}

export type OptionKey = keyof z.infer<typeof serveOptionsSchema>
export const OPTION_KEYS = Object.keys(serveOptionsSchema.shape) as OptionKey[]

export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
}

export function envName(key: string): string {
  return `MODELGATE_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`
}

export class ConfigError extends Error {}

/**
 * zod's issues as a person would say them ("expected a whole number, got 'eighty'", not
 * "Invalid input: expected number, received NaN"); undefined keeps zod's own message.
 */
function inWords(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'number') return 'expected a number'
      if (issue.expected === 'int') return 'expected a whole number'
      return `expected ${issue.expected === 'boolean' ? 'true or false' : `a ${issue.expected}`}`
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty'
      return `must be ${issue.inclusive === false ? 'more than' : 'at least'} ${issue.minimum}`
    case 'too_big':
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${issue.maximum}`
    case 'invalid_value':
      return `expected one of ${issue.values.map(String).join(', ')}`
    default:
      return undefined
  }
}

/**
 * Secrets do not belong in argv (every user sees it in `ps`): environment or a file only. The
 * file wins; surrounding whitespace (a trailing newline) is not part of the secret.
 */
function readSecret(
  fromEnv: string | undefined,
  file: string | undefined,
  fileSource: string,
): string | undefined {
  let secret = fromEnv
  if (file !== undefined) {
    try {
      secret = readFileSync(file, 'utf8')
    } catch (e) {
      throw new ConfigError(`invalid ${fileSource}: cannot read ${file}: ${(e as Error).message}`)
    }
  }
  secret = secret?.trim()
  return secret === '' ? undefined : secret
}

function readAdminToken(
  env: Readonly<Record<string, string | undefined>>,
  file: string | undefined,
  fileSource: string | undefined,
): string | undefined {
  const token = readSecret(env.MODELGATE_ADMIN_TOKEN, file, fileSource ?? '--admin-token-file')
  if (token !== undefined && token.length < 16)
    throw new ConfigError('invalid MODELGATE_ADMIN_TOKEN: use at least 16 characters')
  return token
}

/**
 * Merges flags over environment and validates. Throws ConfigError naming the flag (or the
 * environment variable) that holds the bad value.
 */
export function loadServeConfig(
  flags: Readonly<Partial<Record<OptionKey, string | boolean | readonly string[] | undefined>>>,
  env: Readonly<Record<string, string | undefined>>,
): ServeConfig {
  const merged: Record<string, string | boolean | readonly string[]> = {}
  const source: Record<string, string> = {}
  for (const key of OPTION_KEYS) {
    const fromFlag = flags[key]
    const fromEnv = env[envName(key)]
    if (fromFlag !== undefined) {
      merged[key] = fromFlag
      source[key] = flagName(key)
    } else if (fromEnv !== undefined && fromEnv !== '') {
      merged[key] = fromEnv
      source[key] = envName(key)
    }
  }
  const parsed = serveOptionsSchema.safeParse(merged, { error: inWords })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const key = String(issue.path[0] ?? '')
    const given = merged[key]
    const got =
      typeof given === 'string' && !issue.message.includes(' got ') ? `, got '${given}'` : ''
    throw new ConfigError(`invalid ${source[key] ?? flagName(key)}: ${issue.message}${got}`)
  }
  const o = parsed.data
  const name = (key: OptionKey) => source[key] ?? flagName(key)
  if (o.maxInflightBodySize < o.maxBodySize) {
    throw new ConfigError(
      `invalid ${name('maxInflightBodySize')}: must be at least ${name('maxBodySize')} (${o.maxBodySize} bytes), or no body of the largest size could ever be received`,
    )
  }
  if (o.requestTimeout < o.headerTimeout) {
    throw new ConfigError(
      `invalid ${name('requestTimeout')}: must be at least ${name('headerTimeout')} (${o.headerTimeout} s): the headers are part of the request`,
    )
  }
  const modelsDir = resolve(o.models)
  return Object.freeze({
    modelsDir,
    port: o.port,
    host: o.host,
    grpcPort: o.grpcPort,
    grpcMaxMessageBytes: o.grpcMaxMessageSize,
    stateDir: resolve(o.stateDir ?? `${modelsDir}/.modelgate`),
    defaultModel: o.defaultModel,
    maxBodyBytes: o.maxBodySize,
    maxOutputBytes: o.maxOutputSize,
    logLevel: o.logLevel,
    stabilityMs: o.stabilityMs,
    poll: o.poll,
    rescanMs: o.rescanMs,
    requireSmoke: o.requireSmoke,
    shutdownTimeoutMs: Math.round(o.shutdownTimeout * 1000),
    adminToken: readAdminToken(env, o.adminTokenFile, source.adminTokenFile),
    maxInflightBodyBytes: o.maxInflightBodySize,
    headerTimeoutMs: Math.round(o.headerTimeout * 1000),
    bodyTimeoutMs: Math.round(o.bodyTimeout * 1000),
    requestTimeoutMs: Math.round(o.requestTimeout * 1000),
    maxModelBytes: o.maxModelSize,
    threadpoolStallMs: o.threadpoolStallMs,
    execution: o.execution,
    maxMemoryBytes: o.maxMemory,
    webhooks: o.webhook,
    webhookSecret: readSecret(
      env.MODELGATE_WEBHOOK_SECRET,
      o.webhookSecretFile,
      source.webhookSecretFile ?? '--webhook-secret-file',
    ),
    workers: o.workers,
  })
}
