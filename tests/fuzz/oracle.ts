import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync, inflateSync } from 'node:zlib'
import type { FuzzOutcome, FuzzRequest } from './raw-request.js'

/**
 * What every answer must be, whatever was asked: 2xx or 4xx, or a 5xx the situation explains;
 * the documented error body; nothing of the server's insides (a stack trace, a path on disk).
 *
 * The documented 5xx codes (src/errors.ts), and when a fuzzed request may get one:
 * - `model_not_ready` (503): the model the request names (or the default model) has no active
 *   version at that moment: a model whose every version was rejected, or the sacrificial model
 *   after a fuzzed `unload`. Never for a model that serves.
 * - `inference_failed` (500): onnxruntime refused inputs inside a kernel, for a model whose kernels
 *   can refuse shapes or values its declared signature allows (a Reshape to a size taken from the
 *   request, two inputs that must broadcast, TopK's k). The server cannot know without running the
 *   model, and the README documents it ("sizes their declared dims allow"). Only on a route that
 *   runs a model, only for such a model, and the message must be the runtime's.
 * - `internal_error` (500): never; it means a bug in modelgate.
 * - `shutting_down` (503): never; the server is not stopping.
 * - `overloaded` (503): never; requests are sent one at a time, so the body budget (four times the
 *   body limit) always has room: an `overloaded` means a body's claim was not given back.
 * - `threadpool_stalled` (503, /healthz): never; no request may hold libuv's threadpool for the
 *   stall threshold (10 s), and a gzip bomb is decoded only up to the body limit.
 * - `state_write_failed` (503, admin): never; the state directory is a writable temp directory.
 */

export interface OracleContext {
  /** Models whose kernels can refuse inputs the signature allows, and why. */
  readonly kernelMayRefuse: ReadonlyMap<string, string>
  /** Does this model have an active version now? (read from the in-process server's registry) */
  readonly serving: (model: string) => boolean
  readonly defaultModel: string
  /** Text no answer may contain: the temp directory, the checkout. */
  readonly secrets: readonly string[]
  readonly maxBodyBytes: number
}

const ROOT = join(import.meta.dirname, '..', '..')

/** code -> status, as src/errors.ts declares them (the README table is checked against the same). */
const ERROR_STATUS: ReadonlyMap<string, number> = new Map(
  [
    ...readFileSync(join(ROOT, 'src/errors.ts'), 'utf8').matchAll(
      /readonly code = '([a-z_]+)'\s+readonly status = (\d+)/g,
    ),
  ].map((m) => [m[1]!, Number(m[2])]),
)

/** Routes that run a model. */
const RUNS_A_MODEL =
  /^\/(?:predict|models\/([^/]+)\/(?:versions\/[^/]+\/)?predict|v2\/models\/([^/]+)\/(?:versions\/[^/]+\/)?infer)$/
/** Routes that name a model in their path (the first capture), or the default model (none). */
const NAMES_A_MODEL =
  /^\/(?:predict|rollback|models\/([^/]+)(?:\/.*)?|v2\/models\/([^/]+)(?:\/.*)?|v2\/repository\/models\/([^/]+)\/(?:load|unload))$/

/** The V2 protocol's error body has no code: the message says which it was. */
function v2Code(status: number, message: string): string | undefined {
  if (status === 500 && /^onnxruntime (failed to run|returned no output)/.test(message))
    return 'inference_failed'
  if (status === 500) return 'internal_error'
  if (status === 503 && /has no active version yet$/.test(message)) return 'model_not_ready'
  if (status === 503 && /shutting down/.test(message)) return 'shutting_down'
  if (status === 503) return 'overloaded'
  return undefined
}

class OracleError extends Error {}

function decodeBody(body: Buffer, encoding: string | undefined): Buffer {
  if (encoding === 'gzip') return gunzipSync(body)
  if (encoding === 'deflate') return inflateSync(body)
  if (encoding !== undefined)
    throw new OracleError(`answer in an unexpected Content-Encoding '${encoding}'`)
  return body
}

/**
 * The path a route sees: the request target without its query, dot segments resolved (the
 * WHATWG URL parser that builds the request's URL resolves `/x/..` and `%2e%2e`).
 */
function routedPath(target: string): string {
  const raw = target.split(/[?#]/, 1)[0]!
  try {
    return new URL(raw, 'http://localhost').pathname
  } catch {
    return raw
  }
}

/** The model a request is about, as the server resolves it from the path (decoded), if any. */
function modelOf(p: string, defaultModel: string): string | undefined {
  const m = NAMES_A_MODEL.exec(p)
  if (!m) return undefined
  const raw = m[1] ?? m[2] ?? m[3]
  if (raw === undefined) return defaultModel
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}

/** Throws an OracleError saying what is wrong with `outcome` as the answer to `r`. */
export function judge(ctx: OracleContext, r: FuzzRequest, outcome: FuzzOutcome): void {
  if (outcome.kind === 'closed') {
    // Refusing a body part-way closes the connection (413 and 503 say Connection: close); a client
    // still writing may see the close before it reads the answer. Only for bodies over the limit.
    const big = (r.body?.length ?? 0) > ctx.maxBodyBytes || decodesPast(r.body, ctx.maxBodyBytes)
    // Node's parser answers what is not HTTP and destroys the socket at once: the answer may be lost.
    if (big || notHttp(r)) return
    throw new OracleError(`the connection closed without an answer (${outcome.error})`)
  }
  const { status, headers } = outcome
  const head = r.method === 'HEAD'
  const contentEncoding = headers['content-encoding'] as string | undefined
  const body = head ? Buffer.alloc(0) : decodeBody(outcome.body, contentEncoding)
  const text = body.toString('utf8')
  if (text.includes('    at '))
    throw new OracleError(`the answer holds a stack trace: ${text.slice(0, 300)}`)
  for (const secret of ctx.secrets) {
    if (text.includes(secret))
      throw new OracleError(
        `the answer names a path on the server (${secret}): ${text.slice(0, 300)}`,
      )
  }
  // `GET /` from a browser (Accept: text/html) is sent to the dashboard: the one redirect.
  const toDashboard =
    status === 303 &&
    headers.location === '/ui' &&
    (r.method === 'GET' || r.method === 'HEAD') &&
    routedPath(r.path) === '/' &&
    Object.entries(r.headers).some(
      ([k, v]) => k.toLowerCase() === 'accept' && /text\/html/i.test(v),
    )
  if (toDashboard) return
  if (status < 200 || (status >= 300 && status < 400) || status >= 600)
    throw new OracleError(`status ${status}`)
  // Node's own answer to `Expect: <anything but 100-continue>`: no route is involved.
  if (
    status === 417 &&
    r.headers.expect !== undefined &&
    r.headers.expect.toLowerCase() !== '100-continue'
  )
    return
  // Node's HTTP parser refusing what is not HTTP (a raw byte >= 0x80 in the request target, a
  // head over its 16 KiB): the request never reached modelgate. No body; the connection closes.
  const refused = (notHttp(r) && status === 400) || (headSize(r) > 16 * 1024 && status === 431)
  if (refused && outcome.body.length === 0 && headers.connection === 'close') return
  if (status < 400) {
    if (!head && /json/.test(String(headers['content-type']))) parseJson(text, status)
    return
  }
  const path = routedPath(r.path)
  // Readiness says "not ready" in its own shape: /readyz with 503 (for probes), the V2 routes with
  // a 4xx, as the protocol asks. (A model's periodic re-check can make /readyz say so for a moment:
  // see the suite's report; the server is not judged on when it is ready here, only on the form.)
  const notReady =
    (status === 503 && path === '/readyz') ||
    (status === 400 &&
      /^\/v2\/(?:health\/ready|models\/[^/]+\/(?:versions\/[^/]+\/)?ready)$/.test(path))
  if (notReady && (head || (parseJson(text, status) as { ready?: unknown }).ready === false)) return
  // The V2 protocol's routes answer `{"error": "<message>"}`; modelgate's own `{"error": {code, message}}`.
  // A Host header that is not a host name leaves no URL to resolve dot segments in: the raw path decides.
  const unbuildable =
    r.headers.host !== undefined && !/^[A-Za-z0-9._-]*(?::\d+)?$/.test(r.headers.host)
  const v2Path = unbuildable ? r.path.split(/[?#]/, 1)[0]! : path
  const v2 = v2Path === '/v2' || v2Path.startsWith('/v2/')
  let code: string | undefined
  let message = ''
  if (!head) {
    if (!/^application\/json/.test(String(headers['content-type'])))
      throw new OracleError(`error answer ${status} with Content-Type ${headers['content-type']}`)
    const json = parseJson(text, status) as Record<string, unknown>
    if (json === null || typeof json !== 'object' || Object.keys(json).join() !== 'error')
      throw new OracleError(`error body is not {"error": ...}: ${text.slice(0, 300)}`)
    if (v2) {
      if (typeof json.error !== 'string' || json.error === '')
        throw new OracleError(`V2 error body is not {"error": "<message>"}: ${text.slice(0, 300)}`)
      message = json.error
      code = v2Code(status, message)
    } else {
      const e = json.error as Record<string, unknown>
      if (
        e === null ||
        typeof e !== 'object' ||
        typeof e.code !== 'string' ||
        typeof e.message !== 'string' ||
        e.message === ''
      ) {
        throw new OracleError(
          `error body is not {"error": {"code", "message"}}: ${text.slice(0, 300)}`,
        )
      }
      const extra = Object.keys(e).filter((k) => !['code', 'message', 'details'].includes(k))
      if (extra.length > 0)
        throw new OracleError(`error body has keys ${extra.join(', ')}: ${text.slice(0, 300)}`)
      code = e.code
      message = e.message
      if (ERROR_STATUS.get(code) !== status)
        throw new OracleError(
          `code '${code}' answered with status ${status}; src/errors.ts says ${ERROR_STATUS.get(code) ?? 'no such code'}`,
        )
    }
  }
  if (status === 405 && !headers.allow) throw new OracleError('405 without an Allow header')
  if (status === 401 && !headers['www-authenticate'])
    throw new OracleError('401 without WWW-Authenticate')
  if (status < 500) return
  if (head) {
    // No body to read the code from: the same request as a GET says (the oracle does not resend);
    // only the situations where any 5xx is allowed pass.
    code = status === 503 ? 'model_not_ready' : 'inference_failed'
  }
  const model = modelOf(path, ctx.defaultModel)
  if (code === 'model_not_ready') {
    if (model !== undefined && !ctx.serving(model)) return
    throw new OracleError(
      `503 model_not_ready for '${model}', which has an active version: ${message}`,
    )
  }
  if (code === 'inference_failed') {
    const runs = RUNS_A_MODEL.test(path)
    if (
      runs &&
      model !== undefined &&
      ctx.kernelMayRefuse.has(model) &&
      (head || /^onnxruntime failed to run model/.test(message))
    )
      return
    throw new OracleError(
      `500 inference_failed where no kernel should refuse (model '${model}'): ${message}`,
    )
  }
  throw new OracleError(`${status} ${code ?? '(no code)'}: ${message || text.slice(0, 300)}`)
}

/** Does `body` decode (as gzip or zlib) to more than `limit` bytes? */
function decodesPast(body: Buffer | undefined, limit: number): boolean {
  if (!body) return false
  for (const decode of [gunzipSync, inflateSync]) {
    try {
      decode(body, { maxOutputLength: limit })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return true
    }
  }
  return false
}

/** A request target with a byte HTTP does not allow there (raw non-ASCII): Node refuses it, not modelgate. */
function notHttp(r: FuzzRequest): boolean {
  return /[^\x21-\x7e]/.test(r.path)
}

/** About how many bytes the request line and headers take. */
function headSize(r: FuzzRequest): number {
  return (
    r.method.length +
    r.path.length +
    12 +
    Object.entries(r.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0)
  )
}

function parseJson(text: string, status: number): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw new OracleError(`answer ${status} says JSON but is not: ${text.slice(0, 200)}`)
  }
}
