import type { Context, Handler, Hono } from 'hono'
import { MethodNotAllowedError } from '../errors.js'

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'

/**
 * Registers the handlers of one path and answers every other method with 405 and an Allow
 * header (Hono alone would say 404, which tells a client the path is wrong when it is not).
 */
export function route(app: Hono, path: string, handlers: Partial<Record<Method, Handler>>): void {
  const allow: string[] = []
  for (const [method, handler] of Object.entries(handlers) as [Method, Handler][]) {
    app.on(method, path, handler)
    allow.push(method)
    if (method === 'GET') allow.push('HEAD')
  }
  app.all(path, function methodNotAllowed() {
    throw new MethodNotAllowedError(allow)
  })
}

/** A path parameter the route pattern guarantees (Hono types it as optional through `Handler`). */
export function pathParam(c: Context, name: string): string {
  const value = c.req.param(name)
  if (value === undefined) throw new Error(`route has no :${name} parameter`)
  return value
}
