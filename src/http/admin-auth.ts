import { getConnInfo } from '@hono/node-server/conninfo'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'
import { ForbiddenError, UnauthorizedError } from '../errors.js'

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/** Does listening on `host` keep every client on this machine? (`localhost`, 127.0.0.0/8, ::1) */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * Admin routes: `Authorization: Bearer <token>` compared in constant time (both sides hashed first,
 * so neither the content nor the length leaks through timing). With no token configured, only
 * loopback clients are served: an operator on the machine, never the network.
 */
export function adminAuth(token: string | undefined): MiddlewareHandler {
  const refusal = adminRefusal(token)
  return async function requireAdmin(c: Context, next) {
    const refused = refusal(c)
    if (refused instanceof UnauthorizedError)
      c.header('WWW-Authenticate', 'Bearer realm="modelgate-admin"')
    if (refused) throw refused
    return next()
  }
}

/**
 * Would the admin routes serve this request? `open` (they would), `token` (a token is set and this
 * request has no valid one), `loopback_only` (no token is set and the client is not on this
 * machine): what the dashboard shows of admin data, and which actions it offers.
 */
export type AdminAccess = 'open' | 'token' | 'loopback_only'

export function adminAccess(token: string | undefined): (c: Context) => AdminAccess {
  const refusal = adminRefusal(token)
  return function accessOf(c) {
    const refused = refusal(c)
    if (!refused) return 'open'
    return refused instanceof UnauthorizedError ? 'token' : 'loopback_only'
  }
}

/** The error the admin routes would answer this request with, or undefined: they serve it. */
function adminRefusal(
  token: string | undefined,
): (c: Context) => ForbiddenError | UnauthorizedError | undefined {
  const expected = token === undefined ? undefined : digest(token)
  return function refusalOf(c) {
    if (expected === undefined) {
      const address = getConnInfo(c).remote.address
      if (address === undefined || !LOOPBACK.has(address)) {
        return new ForbiddenError(
          'admin routes answer loopback clients only while no admin token is configured (set MODELGATE_ADMIN_TOKEN)',
        )
      }
      // A browser on this machine is a loopback client too, whatever page it shows: a form or a
      // fetch() from another site must not roll back a model. Browsers say where a request comes
      // from; curl and the CLI say nothing, and the dashboard is this server's own origin.
      if (fromAnotherOrigin(c))
        return new ForbiddenError(
          'admin routes refuse requests a browser sends from a page of another origin while no admin token is configured',
        )
      return undefined
    }
    const header = c.req.header('authorization') ?? ''
    const m = /^Bearer\s+(.+)$/i.exec(header)
    if (!m || !timingSafeEqual(digest(m[1]!.trim()), expected)) {
      return new UnauthorizedError(
        m ? 'the admin token is not valid' : 'admin routes need "Authorization: Bearer <token>"',
      )
    }
    return undefined
  }
}

/** The request comes from a page of another origin: its Origin is not this server, or the browser says cross-site. */
function fromAnotherOrigin(c: Context): boolean {
  const site = c.req.header('sec-fetch-site')
  if (site === 'cross-site' || site === 'same-site') return true
  const origin = c.req.header('origin')
  if (origin === undefined) return false
  try {
    return new URL(origin).host !== c.req.header('host')
  } catch {
    return true // "null" (a sandboxed or file: page), or anything else that is not this server
  }
}
