import { createHmac } from 'node:crypto'
import type { Published } from './event-bus.js'
import type { DeliveryAttempt } from './webhook-queue.js'

const SIGNATURE_HEADER = 'x-modelgate-signature'

/** `sha256=<hex>`: the HMAC-SHA256 of the exact body with the shared secret (as GitHub signs). */
function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

/**
 * One attempt: a JSON POST of the event, bounded by `timeoutMs` from the request to the answer's
 * status. Any 2xx accepts it; a redirect is not followed (a webhook URL names its receiver).
 */
export function webhookPost(
  url: string,
  o: { readonly secret: string | undefined; readonly timeoutMs: number },
): DeliveryAttempt {
  const target = new URL(url)
  const basic = basicAuth(target)
  // fetch refuses a URL with credentials: they go in the Authorization header instead.
  target.username = target.password = ''
  return async function postEvent({ event, json }: Published, cancel: AbortSignal) {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-modelgate-event': event.type,
      'x-modelgate-event-id': String(event.id),
    }
    if (basic !== undefined) headers.authorization = basic
    if (o.secret !== undefined) headers[SIGNATURE_HEADER] = signature(o.secret, json)
    const timeout = AbortSignal.timeout(o.timeoutMs)
    const res = await fetch(target, {
      method: 'POST',
      headers,
      body: json,
      redirect: 'manual',
      signal: AbortSignal.any([cancel, timeout]),
    }).catch((e: Error) => {
      throw new Error(failure(e, timeout.aborted && o.timeoutMs))
    })
    // The answer's body is not read: a receiver that streams one forever must not hold the lane.
    await res.body?.cancel()
    if (res.status < 200 || res.status > 299) throw new Error(`answered HTTP ${res.status}`)
  }
}

/** `https://user:password@host/`: the credentials as Basic auth, or undefined without any. */
function basicAuth(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined
  const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
  return `Basic ${Buffer.from(pair).toString('base64')}`
}

/** Why an attempt failed, in words a log reader acts on ("fetch failed" alone says nothing). */
function failure(e: Error, timedOut: number | false): string {
  if (timedOut !== false) return `no answer within ${timedOut} ms`
  const cause = e.cause as { code?: string; message?: string } | undefined
  return cause?.message ?? cause?.code ?? e.message
}
