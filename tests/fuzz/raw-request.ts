import { type Agent, request } from 'node:http'

/** One request exactly as the fuzz suite sends it: any method, any path bytes, any headers and body. */
export interface FuzzRequest {
  readonly method: string
  /** The request target as written on the request line (not normalized, not re-encoded). */
  readonly path: string
  /** Lower-case names. `content-length` is added for a body unless `chunked`. */
  readonly headers: Readonly<Record<string, string>>
  readonly body?: Buffer | undefined
  /** Send the body chunked (no Content-Length), in two pieces. */
  readonly chunked?: boolean | undefined
}

export type FuzzOutcome =
  | {
      readonly kind: 'response'
      readonly status: number
      readonly headers: Readonly<Record<string, string | string[] | undefined>>
      readonly body: Buffer
    }
  /** The server closed or reset the connection without a complete answer. */
  | { readonly kind: 'closed'; readonly error: string }

/** How long one answer may take before the request counts as a hang. */
const ANSWER_DEADLINE_MS = 20_000

/**
 * Sends `r` to `base` over `agent` (keep-alive: the suite also checks that a refused request does
 * not poison the connection the next one reuses). Never rejects for what the server does: a reset
 * is an outcome the oracle judges. Rejects only on a hang (no answer within the deadline).
 */
export function send(base: string, agent: Agent, r: FuzzRequest): Promise<FuzzOutcome> {
  const { hostname, port } = new URL(base)
  const headers: Record<string, string> = { ...r.headers }
  if (r.body !== undefined && !r.chunked) headers['content-length'] = String(r.body.length)
  if (r.chunked) headers['transfer-encoding'] = 'chunked'
  return new Promise<FuzzOutcome>((resolve, reject) => {
    const req = request({
      host: hostname,
      port: Number(port),
      method: r.method,
      path: r.path,
      headers,
      agent,
      setHost: !('host' in headers),
    })
    const timer = setTimeout(() => {
      req.destroy()
      reject(
        new Error(
          `no answer within ${ANSWER_DEADLINE_MS} ms to ${r.method} ${r.path.slice(0, 200)}`,
        ),
      )
    }, ANSWER_DEADLINE_MS)
    let settled = false
    const settle = (o: FuzzOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(o)
    }
    req.on('response', (res) => {
      // An event stream (GET /events) never ends by itself: its status and headers are the answer.
      if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        settle({
          kind: 'response',
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.alloc(0),
        })
        req.destroy()
        return
      }
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        settle({
          kind: 'response',
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks),
        }),
      )
      res.on('error', (e) => settle({ kind: 'closed', error: `response: ${e.message}` }))
      res.on('aborted', () => settle({ kind: 'closed', error: 'response aborted' }))
    })
    req.on('error', (e) =>
      settle({ kind: 'closed', error: (e as NodeJS.ErrnoException).code ?? e.message }),
    )
    if (r.body === undefined || r.body.length === 0) return void req.end(r.body)
    if (!r.chunked) return void req.end(r.body)
    const half = r.body.length >> 1
    req.write(r.body.subarray(0, half))
    req.end(r.body.subarray(half))
  })
}

const cut = (s: string, n = 400) => (s.length > n ? `${s.slice(0, n)}... (${s.length} chars)` : s)

/** A request as a failure message shows it: enough to send it again by hand. */
export function describeRequest(r: FuzzRequest): string {
  const body =
    r.body === undefined
      ? 'no body'
      : `${r.body.length} bytes${r.chunked ? ' chunked' : ''}: ${JSON.stringify(cut(r.body.toString('latin1')))}`
  return `${r.method} ${JSON.stringify(cut(r.path, 300))} ${JSON.stringify(r.headers, (_, v: unknown) => (typeof v === 'string' ? cut(v, 120) : v))} ${body}`
}

export function describeOutcome(o: FuzzOutcome): string {
  if (o.kind === 'closed') return `connection closed (${o.error})`
  return `${o.status} ${JSON.stringify(o.headers)} ${JSON.stringify(cut(o.body.toString('latin1')))}`
}
