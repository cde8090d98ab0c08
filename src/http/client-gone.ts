import type { HttpBindings } from '@hono/node-server'
import type { Context } from 'hono'

/**
 * Whether the client of a Hono request has gone away (its connection is closed): asked when its
 * queued work comes up, so work for nobody is dropped. Undefined for a request that did not come
 * over a socket (app.request in a test).
 */
export function clientGone(c: Context): (() => boolean) | undefined {
  const socket = (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket
  return socket ? () => socket.destroyed : undefined
}
