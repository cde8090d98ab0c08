import { createHash, timingSafeEqual } from 'node:crypto'
import { ForbiddenError, UnauthorizedError } from './errors.js'

/**
 * Who may administer: the rule the HTTP admin routes and gRPC's repository calls share. With a
 * token, `Bearer <token>` compared in constant time (both sides hashed first, so neither the content
 * nor the length leaks through timing); without one, loopback clients only.
 */

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/** Does listening on `host` keep every client on this machine? (`localhost`, 127.0.0.0/8, ::1) */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** Is a client at this address on this machine? */
export function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && LOOPBACK.has(address)
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** The refusal for an `Authorization` value when a token is configured, or undefined: it holds the token. */
export function bearerRefusal(
  token: string,
): (authorization: string | undefined) => UnauthorizedError | undefined {
  const expected = digest(token)
  return function refusalOf(authorization) {
    const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '')
    if (m && timingSafeEqual(digest(m[1]!.trim()), expected)) return undefined
    return new UnauthorizedError(
      m ? 'the admin token is not valid' : 'admin routes need "Authorization: Bearer <token>"',
    )
  }
}

/** Without a token, a client that is not on this machine is refused with this. */
export function loopbackOnlyRefusal(): ForbiddenError {
  return new ForbiddenError(
    'admin routes answer loopback clients only while no admin token is configured (set MODELGATE_ADMIN_TOKEN)',
  )
}
