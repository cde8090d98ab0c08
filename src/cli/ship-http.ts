import { CommandError, EXIT } from './ship-exit.js'

/**
 * The few HTTP calls `ship --wait` and `smoke record --url` make: JSON in, JSON out. A server that
 * does not answer is exit 3; an HTTP error status is the caller's to judge.
 */

export const DEFAULT_URL = 'http://127.0.0.1:8080'

const REQUEST_TIMEOUT_MS = 30_000

export interface JsonAnswer {
  readonly status: number
  readonly body: unknown
}

export async function requestJson(url: string, body?: unknown): Promise<JsonAnswer> {
  let res: Response
  try {
    res = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause
    const why = cause?.code ?? cause?.message ?? (e as Error).message
    throw new CommandError(EXIT.unreachable, `no answer from ${new URL(url).origin}: ${why}`)
  }
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new CommandError(
      EXIT.unreachable,
      `${url} answered ${res.status} with something that is not JSON: is it a modelgate server?`,
    )
  }
  return { status: res.status, body: parsed }
}

/** The server's own words for an error answer (`{"error": {"code", "message"}}`). */
export function errorText(answer: JsonAnswer): string {
  const error = (answer.body as { error?: { code?: string; message?: string } }).error
  return error ? `${error.code}: ${error.message}` : `HTTP ${answer.status}`
}

/** `--url` without a trailing slash, checked once. */
export function serverUrl(value: string | undefined): string {
  const url = value ?? DEFAULT_URL
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error()
  } catch {
    throw new CommandError(EXIT.usage, `invalid --url '${url}': an http:// or https:// URL`)
  }
  return url.replace(/\/+$/, '')
}
