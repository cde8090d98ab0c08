import { expect } from 'vitest'
import { waitFor } from './wait-for.js'

/**
 * The HTTP API as the tests call it: one client, so every test file asks the server the same way
 * and a change to a route is made here once.
 */

export interface JsonResponse<T = any> {
  readonly status: number
  readonly headers: Headers
  readonly body: T
}

/** Any request whose answer is JSON (every answer of the API is, errors included). */
export async function requestJson<T = any>(
  url: string,
  init?: RequestInit,
): Promise<JsonResponse<T>> {
  return jsonResponse<T>(await fetch(url, init))
}

/** A response whose body is JSON, read. */
export async function jsonResponse<T = any>(res: Response): Promise<JsonResponse<T>> {
  return { status: res.status, headers: res.headers, body: (await res.json()) as T }
}

/** POST a JSON value (or a raw string, sent as is) and parse the JSON answer. */
export function postJson<T = any>(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  return requestJson<T>(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

export function getJson<T = any>(url: string): Promise<JsonResponse<T>> {
  return requestJson<T>(url)
}

/** POST to an admin route (promote, rollback, ...); an empty answer's body is undefined. */
export async function admin(
  url: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
}

/** The input `predict` sends: one row of four, what addConstModel(c) takes. */
export const X = [[1, 2, 3, 4]]

export interface Prediction {
  readonly status: number
  /** X-Model-Version, or null without one (an error). */
  readonly version: number | null
  /** What the answering session adds to its input (addConstModel(c) adds c): which bytes served. */
  readonly constant: number | null
}

/** Predicts X with `model`, or with the default model (POST /predict) when none is named. */
export async function predict(url: string, model?: string): Promise<Prediction> {
  const path = model === undefined ? '/predict' : `/models/${model}/predict`
  const { status, headers, body } = await postJson(`${url}${path}`, { inputs: X })
  const header = headers.get('x-model-version')
  const y = body?.outputs?.y as number[][] | undefined
  return {
    status,
    version: header === null ? null : Number(header),
    constant: y ? y[0]![0]! - X[0]![0]! : null,
  }
}

/** GET /models/{name}, which must answer 200. */
export async function modelDetail(url: string, model: string): Promise<any> {
  const r = await getJson(`${url}/models/${model}`)
  expect(r.status).toBe(200)
  return r.body
}

/** One version's view in a model's detail (undefined: not listed). */
export function versionView(detail: any, version: number): any {
  return detail.versions.find((v: { version: number }) => v.version === version)
}

/** GET /models/{name}/history: its entries, oldest first. */
export async function historyOf(
  url: string,
  model: string,
  headers: Record<string, string> = {},
  limit = 200,
): Promise<any[]> {
  const res = await fetch(`${url}/models/${model}/history?limit=${limit}`, { headers })
  expect(res.status).toBe(200)
  return ((await res.json()) as any).entries
}

export function eventsOf(entries: readonly any[], event: string, version?: number): any[] {
  return entries.filter(
    (e) => e.event === event && (version === undefined || e.version === version),
  )
}

/** Waits until /readyz answers 200 (a server still starting may refuse the connection). */
export async function waitReady(url: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
    `${url} to be ready`,
    timeoutMs,
  )
}

export async function waitActive(
  url: string,
  model: string,
  version: number,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(
    async () => (await getJson(`${url}/models/${model}`)).body.active === version,
    `version ${version} of '${model}' to be active`,
    timeoutMs,
  )
}

/** Waits until a version's view passes `check` (polling on while not listed); returns the view. */
export async function waitForVersion(
  url: string,
  model: string,
  version: number,
  check: (view: any) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<any> {
  let seen: any
  await waitFor(
    async () => {
      const r = await getJson(`${url}/models/${model}`)
      seen = r.status === 200 ? versionView(r.body, version) : undefined
      return seen !== undefined && check(seen)
    },
    `version ${version} of '${model}' ${what}`,
    timeoutMs,
  )
  return seen
}

/** A wait until one field of a version's view has a value: its status, or its reason. */
function waitForField(field: 'status' | 'reason', what: string) {
  return function waitForValue(
    url: string,
    model: string,
    version: number,
    value: string,
    timeoutMs = 20_000,
  ): Promise<any> {
    return waitForVersion(
      url,
      model,
      version,
      (v) => v[field] === value,
      `${what} ${value}`,
      timeoutMs,
    )
  }
}

export const waitStatus = waitForField('status', 'to be')

/** Waits until a version's view carries a reason (a rejection, or what it waits for). */
export const waitReason = waitForField('reason', 'to show reason')

/** Waits until predictions of `model` are answered by `version` adding `constant`. */
export async function waitServing(
  url: string,
  model: string,
  version: number,
  constant: number,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(
    async () => {
      const a = await predict(url, model)
      return a.status === 200 && a.version === version && a.constant === constant
    },
    `'${model}' to be served by version ${version} (x + ${constant})`,
    timeoutMs,
  )
}

export interface MetricSample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Every sample /metrics serves (histograms as their _bucket, _sum and _count samples). */
export async function metricSamples(url: string): Promise<MetricSample[]> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const samples: MetricSample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line)
    if (!m) continue
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]),
    )
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

/** The value of the sample of `name` with exactly these labels (in any order), or undefined. */
export async function metricValue(
  url: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number | undefined> {
  const wanted = Object.entries(labels)
  const sample = (await metricSamples(url)).find(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === wanted.length &&
      wanted.every(([k, v]) => s.labels[k] === v),
  )
  return sample?.value
}
