import { CommandUsageError } from './exit.js'

/**
 * The CLI's side of the HTTP API: one request, its answer as JSON, and the two ways it can go
 * wrong, each with the exit status a script can rely on.
 */

/** The server answered 4xx/5xx: its stable error code and message, as the API documents them. */
export class ServerRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message)
  }
}

/** No answer came: `url` is the server the user asked for, never a token. */
export class Unreachable extends Error {}

export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  readonly url: string
  readonly token: string | undefined
  readonly timeoutMs: number
}

export class ModelgateClient {
  readonly #base: string
  readonly #token: string | undefined
  readonly #timeoutMs: number

  constructor(o: ClientOptions) {
    this.#base = o.url.replace(/\/+$/, '')
    this.#token = o.token
    this.#timeoutMs = o.timeoutMs
  }

  /** The server, as the user named it (never holds a token). */
  get url(): string {
    return this.#base
  }

  get(path: string): Promise<unknown> {
    return this.#request('GET', path, undefined)
  }

  post(path: string, body: unknown): Promise<unknown> {
    return this.#request('POST', path, body)
  }

  async #request(method: string, path: string, body: unknown): Promise<unknown> {
    const url = `${this.#base}${path}`
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    let res: Response
    let text: string
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      })
      text = await res.text()
    } catch (e) {
      throw new Unreachable(unreachableMessage(method, url, e, this.#timeoutMs))
    }
    const json = parseJson(text)
    if (!res.ok) throw refusal(res, json, text)
    if (json === undefined)
      throw new ServerRefusal(
        res.status,
        'not_modelgate',
        `${url} answered ${res.status} with something that is not JSON: is it a modelgate server?`,
        undefined,
      )
    return json
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** modelgate's `{"error": {"code", "message"}}`, or what some other server (a proxy) said. */
function refusal(res: Response, json: unknown, text: string): ServerRefusal {
  const error = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } })
    ?.error
  if (typeof error?.code === 'string' && typeof error.message === 'string')
    return new ServerRefusal(res.status, error.code, error.message, error.details)
  const snippet = text.trim().slice(0, 200)
  return new ServerRefusal(
    res.status,
    `http_${res.status}`,
    `${res.url} answered ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''} (not a modelgate error: is the URL right?)`,
    undefined,
  )
}

/** The causes met most often, in words; any other shows its code (EHOSTUNREACH, ...). */
const WHY: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused (is modelgate running there? --url names another server)',
  ENOTFOUND: 'no such host',
  ECONNRESET: 'the connection was closed before an answer',
}

function unreachableMessage(method: string, url: string, e: unknown, timeoutMs: number): string {
  const err = e as Error & { cause?: { code?: string; message?: string } }
  if (err.name === 'TimeoutError') {
    const after =
      method === 'GET'
        ? ''
        : ' (the server may still carry it out: see `modelgate status` or `modelgate history`)'
    return `no answer from ${url} within ${timeoutMs / 1000} s${after}; --timeout SEC waits longer`
  }
  const code = err.cause?.code
  const why = (code && WHY[code]) ?? code ?? err.cause?.message ?? err.message
  return `cannot reach ${url}: ${why}`
}

export const DEFAULT_URL = 'http://127.0.0.1:8080'

/** `--url` checked: http(s), no credentials (they would be printed in errors), no query. */
export function serverUrl(raw: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new CommandUsageError(`--url '${raw}' is not a URL (e.g. ${DEFAULT_URL})`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CommandUsageError(`--url '${raw}' is not http:// or https://`)
  // A password in the URL would be printed in every error that names the server: --token instead.
  if (url.username || url.password)
    throw new CommandUsageError('--url must not hold credentials: use MODELGATE_ADMIN_TOKEN')
  if (url.search || url.hash)
    throw new CommandUsageError(`--url '${raw}' must be the server's base URL, without ? or #`)
  return url.href
}

/** A client for the server `--url` names, else MODELGATE_URL, else the default; MODELGATE_ADMIN_TOKEN when set. */
export function clientFor(
  url: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs = 30_000,
): ModelgateClient {
  return new ModelgateClient({
    url: serverUrl(url ?? env.MODELGATE_URL ?? DEFAULT_URL),
    token: env.MODELGATE_ADMIN_TOKEN || undefined,
    timeoutMs,
  })
}
