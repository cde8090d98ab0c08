import { InvalidRequestError } from '../errors.js'

/**
 * Percent-encoding in request paths. A malformed escape ('%E0%A4%A' cut short, '%ff' that is not
 * UTF-8, a lone '%') is the client's mistake: 400 naming the segment. decodeURIComponent throws a
 * URIError for it (a 500 where nothing catches it), and Hono keeps the undecodable text as it is,
 * which would be looked up as a model name.
 */

/** One raw path segment, decoded. */
export function decodePathSegment(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    const shown = raw.length > 60 ? `${raw.slice(0, 57)}...` : raw
    throw new InvalidRequestError(
      `the path segment '${shown}' is not valid percent-encoding: each '%' must begin a %XX escape, and the escapes must spell UTF-8`,
    )
  }
}

/** Every segment of a raw URL's path (the query and fragment aside) must decode. */
export function checkPathEncoding(url: string): void {
  if (!url.includes('%')) return
  // The path starts at the first '/' after the scheme's "//", or at once for a request target.
  const start = url.startsWith('/') ? 0 : url.indexOf('/', url.indexOf('//') + 2)
  if (start < 0) return
  let end = url.length
  for (const c of ['?', '#']) {
    const i = url.indexOf(c, start)
    if (i >= 0 && i < end) end = i
  }
  for (const segment of url.slice(start, end).split('/')) {
    if (segment.includes('%')) decodePathSegment(segment)
  }
}
