import type { Context } from 'hono'
import type { z } from 'zod'
import { InvalidJsonError, InvalidRequestError, UnsupportedMediaTypeError } from '../errors.js'
import { readBody } from './read-body.js'

/**
 * One rule for every request body: JSON (`application/json`, `application/<x>+json`, or no
 * Content-Type at all, as Triton's client sends), or, where a route takes the V2 binary tensor
 * extension, `application/octet-stream`. Anything else is 415: `curl -d` sends
 * `application/x-www-form-urlencoded`, and a browser's cross-site form or `text/plain` post must
 * never reach an admin route.
 */
export function checkJsonContentType(
  contentType: string | undefined,
  o: { readonly binary?: boolean } = {},
): void {
  if (contentType === undefined || contentType === 'application/json') return
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase()
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json')))
    return
  if (o.binary && type === 'application/octet-stream') return
  const hint =
    type === 'application/x-www-form-urlencoded'
      ? " (curl -d sends that: add -H 'content-type: application/json')"
      : ''
  throw new UnsupportedMediaTypeError(
    `expected Content-Type: application/json${o.binary ? ' or application/octet-stream' : ''}, got '${contentType}'${hint}`,
  )
}

/** Malformed JSON is a 400, never a 500. `parse` may be an exact-integer parser (V2). */
export function parseJson(bytes: Buffer, parse: (text: string) => unknown = JSON.parse): unknown {
  const text = bytes.toString('utf8')
  try {
    return parse(text)
  } catch (e) {
    if (text.trim() === '')
      throw new InvalidJsonError('the request body is empty; expected a JSON object')
    throw new InvalidJsonError(`the request body is not valid JSON: ${(e as Error).message}`)
  }
}

/** A JSON object of the schema's form; the error names the offending path. */
export function validateBody<T>(json: unknown, schema: z.ZodType<T>): T {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidRequestError('the request body must be a JSON object')
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const path = issue.path.length ? `"${issue.path.join('.')}"` : 'the request body'
    throw new InvalidRequestError(`${path}: ${issue.message}`)
  }
  return parsed.data
}

/** An empty body is `{}`: `curl -X POST .../rollback` is the common case. */
export async function readOptionalJsonAs<T>(
  c: Context,
  schema: z.ZodType<T>,
  limit: number,
): Promise<T> {
  const length = c.req.header('content-length')
  if (length === '0' || (length === undefined && !c.req.header('transfer-encoding')))
    return schema.parse({})
  return readJsonAs(c, schema, limit)
}

/** Reads a JSON body of at most `limit` bytes and validates it. */
export async function readJsonAs<T>(c: Context, schema: z.ZodType<T>, limit: number): Promise<T> {
  checkJsonContentType(c.req.header('content-type'))
  return validateBody(parseJson(await readBody(c, limit)), schema)
}
