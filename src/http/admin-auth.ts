import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context, MiddlewareHandler } from 'hono'
import { bearerRefusal, isLoopbackAddress, loopbackOnlyRefusal } from '../admin-token.js'
import { ForbiddenError, UnauthorizedError } from '../errors.js'

/**
 * Admin routes: `Authorization: Bearer <token>` (admin-token.ts). With no token configured, only
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
  const bearer = token === undefined ? undefined : bearerRefusal(token)
  return function refusalOf(c) {
    if (bearer === undefined) {
      if (!isLoopbackAddress(getConnInfo(c).remote.address)) return loopbackOnlyRefusal()
      // A browser on this machine is a loopback client too, whatever page it shows: a form or a
      // fetch() from another site must not roll back a model. Browsers say where a request comes
      // from; curl and the CLI say nothing, and the dashboard is this server's own origin.
      if (fromAnotherOrigin(c))
        return new ForbiddenError(
          'admin routes refuse requests a browser sends from a page of another origin while no admin token is configured',
        )
      return undefined
    }
    return bearer(c.req.header('authorization'))
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
