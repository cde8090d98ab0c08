import type { Context } from 'hono'
import type { z } from 'zod'
import { InvalidJsonError, InvalidRequestError, UnsupportedMediaTypeError } from '../errors.js'

/** application/json, application/<x>+json; a missing Content-Type is taken as JSON, as Triton does. */
function isJson(contentType: string): boolean {
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase()
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))
}

/** Reads and parses a JSON body; malformed JSON is a 400, never a 500. */
export async function readJson(c: Context): Promise<unknown> {
  const contentType = c.req.header('content-type')
  if (contentType !== undefined && !isJson(contentType)) {
    throw new UnsupportedMediaTypeError(`expected Content-Type: application/json, got '${contentType}'`)
  }
  const text = await c.req.text()
  if (text.trim() === '') throw new InvalidJsonError('the request body is empty; expected a JSON object')
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new InvalidJsonError(`the request body is not valid JSON: ${(e as Error).message}`)
  }
}

/** Reads a JSON body and validates it; the error names the offending path. */
export async function readJsonAs<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const json = await readJson(c)
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
