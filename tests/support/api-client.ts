/**
 * The HTTP API as the tests call it: one client, so every test file asks the server the same way
 * and a change to a route is made here once.
 */

export interface JsonResponse<T = any> {
  readonly status: number
  readonly headers: Headers
  readonly body: T
}

/** POST a JSON value (or a raw string, sent as is) and parse the JSON answer. */
export async function postJson<T = any>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonResponse<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: res.status, headers: res.headers, body: (await res.json()) as T }
}

export async function getJson<T = any>(url: string): Promise<JsonResponse<T>> {
  const res = await fetch(url)
  return { status: res.status, headers: res.headers, body: (await res.json()) as T }
}
